using System.Text.Json;
using TokenService.Jwt;
using TokenService.Sessions;

namespace TokenService.Events;

/// <summary>
/// Our own generic schema (<c>TokenService.Idp.*</c>; data = <c>{ "userId": "…", "occurredAt"?: "…" }</c>,
/// docs/idp-events.md), and Event Grid's own system events, acknowledged without action.
/// </summary>
public sealed class GenericIdpEventTranslator : IIdpEventTranslator
{
    public ValueTask<IdpEventDecision?> TranslateAsync(IdpEventEnvelope e, CancellationToken cancellationToken) => ValueTask.FromResult(Translate(e));

    private static IdpEventDecision? Translate(IdpEventEnvelope e) => e.Type switch
    {
        IdpEventTypes.AccountDisabled => Revoke(e, SessionEndReason.IdpAccountDisabled),
        IdpEventTypes.AccountDeleted => Revoke(e, SessionEndReason.IdpAccountDeleted),
        IdpEventTypes.CredentialChanged or IdpEventTypes.PasswordReset => Revoke(e, SessionEndReason.IdpCredentialChanged),
        IdpEventTypes.SessionsRevoked => Revoke(e, SessionEndReason.IdpSessionsRevoked),
        IdpEventTypes.SubscriptionValidation or IdpEventTypes.SubscriptionDeleted => IdpEventDecision.Ignore(e, e.Time, "Event Grid system event"),
        _ => null,
    };

    // The event happened at data.occurredAt when the IdP says so, else at the envelope's time.
    private static IdpEventDecision Revoke(IdpEventEnvelope e, SessionEndReason reason) =>
        IdpEventDecision.Revoke(e, UserIdFromData(e), reason, OccurredAt(e) ?? e.Time);

    // Envelopes may come from elsewhere than IdpEventEnvelopeReader, so data is read only through JsonText: a userId
    // that is a number, or text with an unpaired surrogate escape, is a malformed event and not an exception.
    private static string UserIdFromData(IdpEventEnvelope e) =>
        JsonText.GetStringOrNull(e.Data, "userId") ?? throw new MalformedEventException($"Event {LogValue.Of(e.Id)} of type {LogValue.Of(e.Type)} needs data.userId.");

    private static DateTimeOffset? OccurredAt(IdpEventEnvelope e) =>
        JsonText.TryGetProperty(e.Data, "occurredAt", out var at) && at.ValueKind == JsonValueKind.String && at.TryGetDateTimeOffset(out var t)
            ? t
            : null;
}
