using TokenService.Jwt;

namespace TokenService.Events;

/// <summary>
/// OpenID Shared Signals Security Event Tokens (RFC 8417) delivered as an event whose data is the SET's compact text:
/// our <c>TokenService.Idp.SecurityEvent</c> type, the <c>application/secevent+jwt</c> content type, or a CAEP/RISC event
/// type URI. The SET is verified by <see cref="SecurityEventTokenValidator"/>; it is deduplicated by its issuer and
/// <c>jti</c>, not by the envelope that carried it.
/// </summary>
public sealed class SecurityEventTranslator(SecurityEventTokenValidator securityEvents) : IIdpEventTranslator
{
    public async ValueTask<IdpEventDecision?> TranslateAsync(IdpEventEnvelope e, CancellationToken cancellationToken)
    {
        if (!(e.Type == IdpEventTypes.SecurityEvent || e.DataContentType == "application/secevent+jwt" || e.Type.StartsWith("https://schemas.openid.net/secevent/", StringComparison.Ordinal)))
        {
            return null;
        }

        if (JsonText.GetStringOrNull(e.Data) is not { } set)
        {
            throw new MalformedEventException("A security event's data must be the SET as a string.");
        }

        SecurityEventOutcome outcome;
        try
        {
            outcome = await securityEvents.ValidateAsync(set, cancellationToken);
        }
        catch (SecurityEventRejectedException ex)
        {
            throw new MalformedEventException($"The security event token is not acceptable ({ex.Error}): {ex.Message}", ex);
        }

        var decision = outcome is { UserId: { } user, Reasons.Count: > 0 }
            ? IdpEventDecision.Revoke(e, user, outcome.Reasons[0], outcome.OccurredAt)
            : IdpEventDecision.Ignore(e, outcome.OccurredAt, outcome.Unsupported ?? "no supported event type in the SET");
        return decision with { DeduplicationKey = outcome.DeduplicationKey };
    }
}
