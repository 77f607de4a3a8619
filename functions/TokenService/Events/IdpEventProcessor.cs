using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TokenService.Configuration;
using TokenService.Diagnostics;
using TokenService.Hosting;
using TokenService.Sessions;

namespace TokenService.Events;

/// <summary>Outcome of a delivery.</summary>
public sealed record IdpEventBatchResult(int Revoked, int Duplicates, int Ignored, int SessionsEnded);

/// <summary>
/// IdP events → "end every session of this user" (docs/api.md, "IdP events"), written once for the webhook and the
/// Functions EventGridTrigger. The whole delivery is validated before anything changes (a malformed event
/// changes nothing), only sessions opened before the event's time end (late or out-of-order deliveries never
/// end newer sessions; sessions opened up to <see cref="EventsOptions.EventTimeSkew"/> after it do end, because event
/// times are often whole seconds), and processed event ids are remembered so a redelivery changes nothing twice.
/// Text from events is logged only through <see cref="LogValue"/>.
/// </summary>
public sealed partial class IdpEventProcessor(
    IUserSessionRevoker revoker,
    IProcessedEventStore processed,
    IReadOnlyList<IIdpEventTranslator> translators,
    IOptions<EventsOptions> options,
    TimeProvider time,
    ILogger<IdpEventProcessor> logger,
    TokenServiceMetrics metrics,
    GraphLifecycleNotifications? graphLifecycle = null,
    IAuditSink? audit = null)
{
    // Without a handler of its own (no subscription health or manager to tell), a lifecycle notification is still logged.
    private readonly GraphLifecycleNotifications _graphLifecycle = graphLifecycle ?? new GraphLifecycleNotifications(logger, metrics);

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
            // Acted on only now, once every event of the delivery has been read: a malformed one changes nothing.
            if (decision.GraphLifecycleEvent is { } lifecycle)
            {
                await _graphLifecycle.HandleAsync(decision, lifecycle, cancellationToken);
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

    /// <summary>
    /// Maps one event: the first translator that knows its source decides (the order is the hosts', see
    /// TokenServiceServiceCollectionExtensions); throws <see cref="MalformedEventException"/> for a known type with unusable data.
    /// </summary>
    public async Task<IdpEventDecision> DecideAsync(IdpEventEnvelope e, CancellationToken cancellationToken)
    {
        foreach (var translator in translators)
        {
            if (await translator.TranslateAsync(e, cancellationToken) is { } decision)
            {
                return decision;
            }
        }

        return IdpEventDecision.Ignore(e, e.Time, "unknown event type");
    }

    private void RecordRevocation(IdpEventDecision decision, int sessionsEnded)
    {
        metrics.EndedByIdpEvent(sessionsEnded, decision.Reason!);
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
}
