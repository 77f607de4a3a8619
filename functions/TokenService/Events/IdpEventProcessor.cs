using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TokenService.Configuration;
using TokenService.Sessions;
using TokenService.Validation.Jose;

namespace TokenService.Events;

/// <summary>What one event asks for.</summary>
public sealed record IdpEventDecision(IdpEventEnvelope Event, string? UserId, string? Reason, DateTimeOffset? OccurredAt, string? IgnoredBecause);

/// <summary>Outcome of a delivery.</summary>
public sealed record IdpEventBatchResult(int Revoked, int Duplicates, int Ignored, int SessionsEnded);

/// <summary>
/// IdP events → "end every session of this user" (CONTRACT §5), written once for the webhook and the
/// Functions EventGridTrigger. The whole delivery is validated before anything changes (a malformed event
/// changes nothing), only sessions opened before the event's time end (late or out-of-order deliveries never
/// end newer sessions), and processed event ids are remembered so a redelivery changes nothing twice.
/// </summary>
public sealed partial class IdpEventProcessor(
    IUserSessionRevoker revoker,
    IProcessedEventStore processed,
    SecurityEventTokenValidator securityEvents,
    IOptions<EventsOptions> options,
    TimeProvider time,
    ILogger<IdpEventProcessor> logger,
    IGraphUserLookup? graph = null)
{
    public async Task<IdpEventBatchResult> ProcessAsync(IReadOnlyList<IdpEventEnvelope> events, CancellationToken cancellationToken)
    {
        var decisions = new List<IdpEventDecision>(events.Count);
        foreach (var e in events)
        {
            decisions.Add(await DecideAsync(e, cancellationToken));
        }

        int revoked = 0, duplicates = 0, ignored = 0, ended = 0;
        foreach (var decision in decisions)
        {
            if (decision.UserId is null)
            {
                ignored++;
                LogIgnored(logger, decision.Event.Type, decision.Event.Id, decision.IgnoredBecause ?? "unknown");
                continue;
            }

            var key = (decision.Event.Source ?? "-") + "|" + decision.Event.Id;
            if (await processed.IsProcessedAsync(key, cancellationToken))
            {
                duplicates++;
                continue;
            }

            ended += await revoker.RevokeAllAsync(decision.UserId, decision.Reason!, null, decision.OccurredAt ?? time.GetUtcNow(), cancellationToken);
            await processed.MarkProcessedAsync(key, time.GetUtcNow() + options.Value.DeduplicationWindow, cancellationToken);
            revoked++;
            LogRevoked(logger, decision.Event.Type, decision.Event.Id, decision.Reason!);
        }

        return new IdpEventBatchResult(revoked, duplicates, ignored, ended);
    }

    /// <summary>Maps one event; throws <see cref="MalformedEventException"/> for a known type with unusable data.</summary>
    public async Task<IdpEventDecision> DecideAsync(IdpEventEnvelope e, CancellationToken cancellationToken)
    {
        var time = e.Time;
        switch (e.Type)
        {
            case IdpEventTypes.AccountDisabled:
                return Revoke(e, UserIdFromData(e), "idp:account-disabled", OccurredAt(e) ?? time);
            case IdpEventTypes.AccountDeleted:
                return Revoke(e, UserIdFromData(e), "idp:account-deleted", OccurredAt(e) ?? time);
            case IdpEventTypes.CredentialChanged or IdpEventTypes.PasswordReset:
                return Revoke(e, UserIdFromData(e), "idp:credential-changed", OccurredAt(e) ?? time);
            case IdpEventTypes.SessionsRevoked:
                return Revoke(e, UserIdFromData(e), "idp:sessions-revoked", OccurredAt(e) ?? time);
            case IdpEventTypes.GraphUserDeleted:
                return Revoke(e, GraphUserId(e), "graph:user-deleted", time);
            case IdpEventTypes.GraphUserUpdated:
            {
                var userId = GraphUserId(e);
                if (graph is null)
                {
                    return new(e, null, null, time, "UserUpdated carries ids only and no Microsoft Graph lookup is configured");
                }

                var enabled = await graph.IsAccountEnabledAsync(userId, cancellationToken);
                return enabled == false
                    ? Revoke(e, userId, "graph:account-disabled", time)
                    : new(e, null, null, time, "the account is enabled");
            }

            case IdpEventTypes.SubscriptionValidation or IdpEventTypes.SubscriptionDeleted:
                return new(e, null, null, time, "Event Grid system event");
        }

        if (e.Type == IdpEventTypes.SecurityEvent || e.DataContentType == "application/secevent+jwt" || e.Type.StartsWith("https://schemas.openid.net/secevent/", StringComparison.Ordinal))
        {
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

            return outcome is { UserId: { } user, Reasons.Count: > 0 }
                ? Revoke(e, user, outcome.Reasons[0], outcome.OccurredAt)
                : new(e, null, null, outcome.OccurredAt, outcome.Unsupported ?? "no supported event type in the SET");
        }

        if (Auth0Code(e) is { } code)
        {
            var reason = IdpEventTypes.Auth0Reason(code);
            if (reason is null)
            {
                return new(e, null, null, time, $"Auth0 log type '{code}' does not end sessions");
            }

            var userId = JsonText.GetStringOrNull(Auth0Log(e), "user_id");
            return Revoke(e, userId ?? throw new MalformedEventException("An Auth0 event has no user_id."), reason, time);
        }

        return new(e, null, null, time, "unknown event type");
    }

    private static IdpEventDecision Revoke(IdpEventEnvelope e, string userId, string reason, DateTimeOffset? occurredAt)
    {
        if (string.IsNullOrWhiteSpace(userId) || userId.Length > 256 || userId.Any(char.IsControl))
        {
            throw new MalformedEventException($"Event {e.Id} names no valid user.");
        }

        return new(e, userId, reason, occurredAt, null);
    }

    // Envelopes may come from elsewhere than IdpEventEnvelopeReader, so data is read only through JsonText: a userId
    // that is a number, or text with an unpaired surrogate escape, is a malformed event and not an exception.
    private static string UserIdFromData(IdpEventEnvelope e) =>
        JsonText.GetStringOrNull(e.Data, "userId") ?? throw new MalformedEventException($"Event {e.Id} of type {e.Type} needs data.userId.");

    private static DateTimeOffset? OccurredAt(IdpEventEnvelope e) =>
        JsonText.TryGetProperty(e.Data, "occurredAt", out var at) && at.ValueKind == JsonValueKind.String && at.TryGetDateTimeOffset(out var t)
            ? t
            : null;

    // Graph change notification: resourceData.id, or the id at the end of "resource" (e.g. "Users/{id}").
    private static string GraphUserId(IdpEventEnvelope e)
    {
        if (e.Data.ValueKind == JsonValueKind.Object)
        {
            if (JsonText.TryGetProperty(e.Data, "resourceData", out var rd) && JsonText.GetStringOrNull(rd, "id") is { } id)
            {
                return id;
            }

            if (JsonText.GetStringOrNull(e.Data, "resource") is { } value)
            {
                var slash = value.LastIndexOf('/');
                if (slash >= 0 && slash < value.Length - 1)
                {
                    return value[(slash + 1)..].Trim('\'', '(', ')');
                }
            }
        }

        throw new MalformedEventException($"Microsoft Graph event {e.Id} has no user id (resourceData.id).");
    }

    // Auth0 partner events: type "auth0.logs.<code>" or data (or data.data) being a log entry with "type".
    private static string? Auth0Code(IdpEventEnvelope e)
    {
        if (e.Type.StartsWith("auth0.", StringComparison.OrdinalIgnoreCase) || (e.Source?.Contains("auth0", StringComparison.OrdinalIgnoreCase) ?? false))
        {
            if (JsonText.GetStringOrNull(Auth0Log(e), "type") is { } type)
            {
                return type;
            }

            var dot = e.Type.LastIndexOf('.');
            return dot >= 0 ? e.Type[(dot + 1)..] : null;
        }

        return null;
    }

    private static JsonElement Auth0Log(IdpEventEnvelope e) =>
        JsonText.TryGetProperty(e.Data, "data", out var inner) && inner.ValueKind == JsonValueKind.Object ? inner : e.Data;

    [LoggerMessage(EventId = 5001, Level = LogLevel.Information, Message = "IdP event {Type} ({Id}) ended the user's sessions ({Reason}).")]
    private static partial void LogRevoked(ILogger logger, string type, string id, string reason);

    [LoggerMessage(EventId = 5002, Level = LogLevel.Information, Message = "IdP event {Type} ({Id}) acknowledged without action: {Why}.")]
    private static partial void LogIgnored(ILogger logger, string type, string id, string why);
}
