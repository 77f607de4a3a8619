using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TokenService.Configuration;
using TokenService.Diagnostics;
using TokenService.Hosting;
using TokenService.Sessions;
using TokenService.Jwt;

namespace TokenService.Events;

/// <summary>What one event asks for.</summary>
public sealed record IdpEventDecision(IdpEventEnvelope Event, string? UserId, SessionEndReason? Reason, DateTimeOffset? OccurredAt, string? IgnoredBecause)
{
    /// <summary>What identifies the event across deliveries: a SET's issuer and jti; otherwise the envelope's source and id.</summary>
    public string DeduplicationKey { get; init; } = (Event.Source ?? "-") + "|" + Event.Id;

    /// <summary>The Microsoft Graph lifecycle notification this event is (reauthorizationRequired, subscriptionRemoved, missed), if any.</summary>
    public string? GraphLifecycleEvent { get; init; }
}

/// <summary>Outcome of a delivery.</summary>
public sealed record IdpEventBatchResult(int Revoked, int Duplicates, int Ignored, int SessionsEnded);

/// <summary>
/// IdP events → "end every session of this user" (CONTRACT §5), written once for the webhook and the
/// Functions EventGridTrigger. The whole delivery is validated before anything changes (a malformed event
/// changes nothing), only sessions opened before the event's time end (late or out-of-order deliveries never
/// end newer sessions; sessions opened up to <see cref="EventsOptions.EventTimeSkew"/> after it do end, because event
/// times are often whole seconds), and processed event ids are remembered so a redelivery changes nothing twice.
/// Text from events is logged only through <see cref="LogValue"/>.
/// </summary>
public sealed partial class IdpEventProcessor(
    IUserSessionRevoker revoker,
    IProcessedEventStore processed,
    SecurityEventTokenValidator securityEvents,
    IOptions<EventsOptions> options,
    TimeProvider time,
    ILogger<IdpEventProcessor> logger,
    IGraphUserLookup? graph = null,
    GraphSubscriptionHealth? graphHealth = null,
    IAuditSink? audit = null,
    GraphSubscriptionManager? graphSubscriptions = null)
{
    public async Task<IdpEventBatchResult> ProcessAsync(IReadOnlyList<IdpEventEnvelope> events, CancellationToken cancellationToken)
    {
        using var activity = TokenServiceDiagnostics.Source.StartActivity(TokenServiceDiagnostics.Spans.IdpEvents);
        activity?.SetTag("tokenservice.idp_events.count", events.Count);
        try
        {
            var result = await ProcessCoreAsync(events, cancellationToken);
            activity?.SetTag("tokenservice.idp_events.revoked", result.Revoked);
            activity?.SetTag("tokenservice.idp_events.duplicates", result.Duplicates);
            activity?.SetTag("tokenservice.idp_events.ignored", result.Ignored);
            activity?.SetTag("tokenservice.idp_events.sessions_ended", result.SessionsEnded);
            return result;
        }
        catch (Exception ex)
        {
            TokenServiceDiagnostics.RecordError(activity, ex);
            throw;
        }
    }

    private async Task<IdpEventBatchResult> ProcessCoreAsync(IReadOnlyList<IdpEventEnvelope> events, CancellationToken cancellationToken)
    {
        var decisions = new List<IdpEventDecision>(events.Count);
        foreach (var e in events)
        {
            decisions.Add(await DecideAsync(e, cancellationToken));
        }

        int revoked = 0, duplicates = 0, ignored = 0, ended = 0;
        foreach (var decision in decisions)
        {
            if (decision.GraphLifecycleEvent is { } lifecycle)
            {
                // Graph lifecycle notifications (docs/idp-events.md, "Operations"): when the app manages the subscription
                // it reauthorizes or recreates it; a failure throws, so Event Grid redelivers (acting again is harmless).
                // "missed" is for an operator: the changes it stands for are lost.
                var subscriptionId = JsonText.GetStringOrNull(decision.Event.Data, "subscriptionId");
                graphHealth?.RecordLifecycleNotification(lifecycle);
                LogGraphLifecycle(logger, lifecycle, LogValue.Of(decision.Event.Id), LogValue.Of(subscriptionId));
                if (lifecycle == "missed")
                {
                    TokenServiceMetrics.GraphSubscriptionMissed();
                }

                if (graphSubscriptions is not null)
                {
                    await graphSubscriptions.HandleLifecycleAsync(lifecycle, subscriptionId, cancellationToken);
                }
            }

            if (decision.UserId is null)
            {
                ignored++;
                LogIgnored(logger, LogValue.Of(decision.Event.Type), LogValue.Of(decision.Event.Id), LogValue.Of(decision.IgnoredBecause ?? "unknown"));
                continue;
            }

            var key = decision.DeduplicationKey;
            if (await processed.IsProcessedAsync(key, cancellationToken))
            {
                duplicates++;
                LogDuplicate(logger, LogValue.Of(decision.Event.Type), LogValue.Of(decision.Event.Id));
                continue;
            }

            // Sessions opened before the event's time end, and those opened up to EventTimeSkew after it: a SET's iat is
            // a whole second (RFC 7519 §2 NumericDate) and the IdP's clock is not ours, so a session opened in the same
            // second as the event would otherwise survive it.
            var createdBefore = TimeArithmetic.AddSaturating(decision.OccurredAt ?? time.GetUtcNow(), options.Value.EventTimeSkew);
            var endedNow = await revoker.RevokeAllAsync(decision.UserId, decision.Reason!, null, createdBefore, cancellationToken);
            ended += endedNow;
            RecordRevocation(decision, endedNow);
            await processed.MarkProcessedAsync(key, time.GetUtcNow() + options.Value.DeduplicationWindow, cancellationToken);
            revoked++;
            LogRevoked(logger, LogValue.Of(decision.Event.Type), LogValue.Of(decision.Event.Id), decision.Reason!.Code);
        }

        return new IdpEventBatchResult(revoked, duplicates, ignored, ended);
    }

    /// <summary>Maps one event; throws <see cref="MalformedEventException"/> for a known type with unusable data.</summary>
    public async Task<IdpEventDecision> DecideAsync(IdpEventEnvelope e, CancellationToken cancellationToken)
    {
        var time = e.Time;
        if (IdpEventTypes.IsGraph(e.Type))
        {
            CheckGraphClientState(e);
            if (GraphLifecycle(e) is { } lifecycle)
            {
                return new(e, null, null, time, "Microsoft Graph lifecycle notification (" + lifecycle + ")") { GraphLifecycleEvent = lifecycle };
            }
        }

        switch (e.Type)
        {
            case IdpEventTypes.AccountDisabled:
                return Revoke(e, UserIdFromData(e), SessionEndReason.IdpAccountDisabled, OccurredAt(e) ?? time);
            case IdpEventTypes.AccountDeleted:
                return Revoke(e, UserIdFromData(e), SessionEndReason.IdpAccountDeleted, OccurredAt(e) ?? time);
            case IdpEventTypes.CredentialChanged or IdpEventTypes.PasswordReset:
                return Revoke(e, UserIdFromData(e), SessionEndReason.IdpCredentialChanged, OccurredAt(e) ?? time);
            case IdpEventTypes.SessionsRevoked:
                return Revoke(e, UserIdFromData(e), SessionEndReason.IdpSessionsRevoked, OccurredAt(e) ?? time);
            case IdpEventTypes.GraphUserDeleted:
                return Revoke(e, GraphUserId(e), SessionEndReason.GraphUserDeleted, time);
            case IdpEventTypes.GraphUserUpdated:
            {
                var userId = GraphUserId(e);
                if (graph is null)
                {
                    return new(e, null, null, time, "UserUpdated carries ids only and no Microsoft Graph lookup is configured");
                }

                // Microsoft Entra events (Event Grid docs): a default user deletion is a soft delete, announced as
                // UserUpdated; from then on Graph answers 404 for the user. So 404 means deleted, never "enabled".
                return await graph.GetUserStateAsync(userId, cancellationToken) switch
                {
                    GraphUserState.Disabled => Revoke(e, userId, SessionEndReason.GraphAccountDisabled, time),
                    GraphUserState.NotFound => Revoke(e, userId, SessionEndReason.GraphUserDeleted, time),
                    GraphUserState.Enabled => new(e, null, null, time, "the account is enabled"),
                    _ => new(e, null, null, time, "Microsoft Graph did not say whether the account is enabled"),
                };
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

            var decision = outcome is { UserId: { } user, Reasons.Count: > 0 }
                ? Revoke(e, user, outcome.Reasons[0], outcome.OccurredAt)
                : new(e, null, null, outcome.OccurredAt, outcome.Unsupported ?? "no supported event type in the SET");
            return decision with { DeduplicationKey = outcome.DeduplicationKey };
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

    // Microsoft Graph change notifications carry the subscription's clientState (Graph docs, "Receive change
    // notifications": validate clientState). When Events:GraphClientState is set, a notification without it or with
    // another value is refused; the whole delivery is malformed and nothing is processed.
    private void CheckGraphClientState(IdpEventEnvelope e)
    {
        if (options.Value.GraphClientState is not { Length: > 0 } expected)
        {
            return;
        }

        var actual = JsonText.GetStringOrNull(e.Data, "clientState");
        if (actual is null || !CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(actual)), SHA256.HashData(Encoding.UTF8.GetBytes(expected))))
        {
            LogClientStateMismatch(logger, LogValue.Of(e.Type), LogValue.Of(e.Id));
            throw new MalformedEventException("A Microsoft Graph notification does not carry the subscription's clientState.");
        }
    }

    // The Event Grid type names the lifecycle notification; the notification's own "lifecycleEvent" says it too.
    private static string? GraphLifecycle(IdpEventEnvelope e) =>
        IdpEventTypes.GraphLifecycleEvent(e.Type)
        ?? JsonText.GetStringOrNull(e.Data, "lifecycleEvent") switch
        {
            "reauthorizationRequired" => "reauthorizationRequired",
            "subscriptionRemoved" => "subscriptionRemoved",
            "missed" => "missed",
            _ => null,
        };

    // MalformedEventException messages name events through LogValue too: the Functions host logs the message of an
    // exception the IdpEvents trigger throws, and the webhook returns it in problem details.
    private static IdpEventDecision Revoke(IdpEventEnvelope e, string userId, SessionEndReason reason, DateTimeOffset? occurredAt)
    {
        // The rule the token exchange applies (UserIds): an id refused here could never have opened a session.
        if (!UserIds.IsValid(userId))
        {
            throw new MalformedEventException($"Event {LogValue.Of(e.Id)} names no valid user.");
        }

        return new(e, userId, reason, occurredAt, null);
    }

    // Envelopes may come from elsewhere than IdpEventEnvelopeReader, so data is read only through JsonText: a userId
    // that is a number, or text with an unpaired surrogate escape, is a malformed event and not an exception.
    private static string UserIdFromData(IdpEventEnvelope e) =>
        JsonText.GetStringOrNull(e.Data, "userId") ?? throw new MalformedEventException($"Event {LogValue.Of(e.Id)} of type {LogValue.Of(e.Type)} needs data.userId.");

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

        throw new MalformedEventException($"Microsoft Graph event {LogValue.Of(e.Id)} has no user id (resourceData.id).");
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

    private void RecordRevocation(IdpEventDecision decision, int sessionsEnded)
    {
        TokenServiceMetrics.EndedByIdpEvent(sessionsEnded, decision.Reason!);
        audit?.Record(new AuditEvent(
            AuditEventKind.IdpEventRevocation, "idp:" + (decision.Event.Source ?? "-"), sessionsEnded > 0 ? "sessions_ended" : "no_live_session", decision.UserId,
            Reason: $"{decision.Reason!.Code}; {sessionsEnded} session(s); event {decision.Event.Type} {decision.Event.Id}"));
    }

    // Every value from an event goes through LogValue.Of: control characters escaped, at most 128 characters.
    [LoggerMessage(EventId = 5001, Level = LogLevel.Information, Message = "IdP event {Type} ({Id}) ended the user's sessions ({Reason}).")]
    private static partial void LogRevoked(ILogger logger, string type, string id, string reason);

    [LoggerMessage(EventId = 5002, Level = LogLevel.Information, Message = "IdP event {Type} ({Id}) acknowledged without action: {Why}.")]
    private static partial void LogIgnored(ILogger logger, string type, string id, string why);

    [LoggerMessage(EventId = 5003, Level = LogLevel.Information, Message = "IdP event {Type} ({Id}) was already processed; acknowledged.")]
    private static partial void LogDuplicate(ILogger logger, string type, string id);

    [LoggerMessage(EventId = 5004, Level = LogLevel.Warning, Message = "Microsoft Graph lifecycle notification {LifecycleEvent} (event {Id}, subscription {SubscriptionId}): the Graph subscription needs attention (renew, recreate or reconcile; docs/idp-events.md).")]
    private static partial void LogGraphLifecycle(ILogger logger, string lifecycleEvent, string id, string subscriptionId);

    [LoggerMessage(EventId = 5005, Level = LogLevel.Warning, Message = "Microsoft Graph notification {Type} ({Id}) refused: its clientState is not Events:GraphClientState.")]
    private static partial void LogClientStateMismatch(ILogger logger, string type, string id);
}
