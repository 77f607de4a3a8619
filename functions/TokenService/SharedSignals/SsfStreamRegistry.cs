using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TokenService.Clients;
using TokenService.Configuration;
using TokenService.Diagnostics;
using TokenService.Sessions;

namespace TokenService.SharedSignals;

/// <summary>
/// The event streams of this transmitter (SSF 1.0 §8.1) behind <see cref="ISsfStreamStore"/> (memory by default, Table
/// Storage when configured: shared by every instance and kept across restarts), at most
/// <c>SharedSignals:MaxStreamsPerReceiver</c> per receiver, and the <see cref="ISessionEndedSink"/> that queues a CAEP
/// session-revoked event (CAEP 1.0 §3.1) on every stream whose receiver may hold tokens of the ended session: a receiver
/// only ever learns of sessions whose audiences include one of its own (the rule introspection applies, docs/api.md
/// "Introspection").
/// <para>
/// Queuing runs after the session store committed and never fails or delays the request that ended the session: the
/// store write is started and tracked (<see cref="WhenQueuedAsync"/>); a write that fails is logged (EventId 2214) and
/// counted, and the receiver's fallback (introspection with bounded staleness) covers the event it misses. With the
/// memory store and no stream it returns at once without allocating.
/// </para>
/// Also the <see cref="IExpiredStateCleaner"/> that deletes streams no receiver used for
/// <c>SharedSignals:StreamInactivityTimeout</c>, and the source of the per-stream status gauges (docs/operations.md).
/// </summary>
public sealed partial class SsfStreamRegistry : ISessionEndedSink, IExpiredStateCleaner
{
    private readonly IClientStore _clients;
    private readonly IOptions<SharedSignalsOptions> _options;
    private readonly ILogger<SsfStreamRegistry> _logger;
    private readonly TimeProvider _time;
    private readonly InMemorySsfStreamStore? _memory;

    /// <summary>Queuing writes started by <see cref="SessionsEnded"/> and not finished yet.</summary>
    private readonly ConcurrentDictionary<Task, byte> _queuing = new();

    /// <summary>The last status seen of each stream (the gauges read it; refreshed by <see cref="RefreshStatusAsync"/>).</summary>
    private volatile IReadOnlyList<SsfStreamStatusSnapshot> _status = [];

    private readonly Counter<long>? _outboxWriteFailures;

    /// <summary>
    /// Completed when push delivery may have work (an event queued, a stream enabled or its delivery changed), and
    /// replaced by a fresh one when a wait takes it. Not a semaphore: a cancelled <c>SemaphoreSlim.WaitAsync</c> stays
    /// registered for a moment and can take a release meant for the next wait; a wait on this only takes the signal
    /// once it has completed, so cancelling one loses nothing.
    /// </summary>
    private TaskCompletionSource _deliveryWork = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public SsfStreamRegistry(
        IClientStore clients,
        IOptions<SharedSignalsOptions> options,
        ILogger<SsfStreamRegistry> logger,
        ISsfStreamStore? store = null,
        TimeProvider? time = null,
        TokenServiceMetrics? metrics = null)
    {
        _clients = clients;
        _options = options;
        _logger = logger;
        _time = time ?? TimeProvider.System;
        Store = store ?? new InMemorySsfStreamStore();
        _memory = Store as InMemorySsfStreamStore;
        if (metrics is not null)
        {
            // Observable instruments hold a callback on this instance, so they live on this host's meter (IMeterFactory).
            _outboxWriteFailures = metrics.Meter.CreateCounter<long>("tokenservice.ssf.outbox.write_failures", "{event}",
                "Shared Signals events that could not be written to a stream's outbox (the change stayed in force; counted on the stream as dropped).");
            metrics.Meter.CreateObservableGauge("tokenservice.ssf.stream.pending", () => Observe(s => s.Pending), "{event}",
                "Events a stream holds (not yet acknowledged), as last seen by this instance.");
            metrics.Meter.CreateObservableGauge("tokenservice.ssf.stream.dropped", () => Observe(s => s.Dropped), "{event}",
                "Events a stream will never deliver, since it was created: dropped by its outbox bound, or not queued because the outbox write failed.");
            metrics.Meter.CreateObservableGauge("tokenservice.ssf.stream.push_failures", () => Observe(s => s.PushFailures), "{attempt}",
                "Failed push deliveries in a row of a push stream (0 after a delivery).");
            metrics.Meter.CreateObservableGauge("tokenservice.ssf.stream.since_last_delivery", ObserveSinceLastDelivery, "s",
                "Seconds since a stream's receiver last acknowledged a delivery; absent before the first.");
        }
    }

    /// <summary>Where the streams and their events are kept.</summary>
    public ISsfStreamStore Store { get; }

    /// <summary>The per-stream status as last seen (<see cref="RefreshStatusAsync"/>).</summary>
    public IReadOnlyList<SsfStreamStatusSnapshot> LastStatus => _status;

    /// <summary>Wakes <see cref="SsfPushDeliveryService"/>: a push stream may have something to send now.</summary>
    public void NotifyDeliveryWork() => Volatile.Read(ref _deliveryWork).TrySetResult();

    /// <summary>
    /// Completes at the next <see cref="NotifyDeliveryWork"/> (at once if one came since the last wait took one); a
    /// cancelled wait takes none.
    /// </summary>
    public async Task WaitForDeliveryWorkAsync(CancellationToken cancellationToken)
    {
        var signal = Volatile.Read(ref _deliveryWork);
        await signal.Task.WaitAsync(cancellationToken);

        // Taken: the next wait waits for the next notification. A notification between the completion and this reset
        // is covered by the caller, which looks for work after the wait returns.
        Interlocked.CompareExchange(ref _deliveryWork, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously), signal);
    }

    /// <summary>
    /// Completes when every queuing write this instance started so far has finished (stored or logged as failed). A poll
    /// waits for it, so a receiver polling the instance that ended a session sees its event.
    /// </summary>
    public Task WhenQueuedAsync() => _queuing.IsEmpty ? Task.CompletedTask : Task.WhenAll(_queuing.Keys);

    /// <summary>The in-memory store's synchronous create (tests that build streams directly); null when the receiver has its maximum.</summary>
    public SsfStream? TryCreate(RegisteredClient receiver, IReadOnlyList<string>? eventsRequested, string? description)
    {
        var memory = _memory ?? throw new InvalidOperationException("TryCreate is the in-memory store's; use CreateAsync.");
        var stream = NewStream(receiver, eventsRequested, description, push: null);
        return memory.TryAdd(stream, _options.Value.MaxStreamsPerReceiver) ? stream : null;
    }

    /// <summary>
    /// Creates a stream of <paramref name="receiver"/>, or null when it has <c>SharedSignals:MaxStreamsPerReceiver</c>
    /// already (SSF 1.0 §8.1.1.1: 409). Several per receiver, because each instance of a scaled-out API needs its own
    /// (two instances polling one stream would split its events between them).
    /// </summary>
    public async ValueTask<SsfStream?> CreateAsync(
        RegisteredClient receiver, IReadOnlyList<string>? eventsRequested, string? description, SsfPushDelivery? push, CancellationToken cancellationToken)
    {
        var stream = NewStream(receiver, eventsRequested, description, push);
        return await Store.TryAddAsync(stream, _options.Value.MaxStreamsPerReceiver, cancellationToken) ? stream : null;
    }

    private SsfStream NewStream(RegisteredClient receiver, IReadOnlyList<string>? eventsRequested, string? description, SsfPushDelivery? push)
    {
        var now = _time.GetUtcNow();
        return new SsfStream(NewStreamId(), receiver.ClientId, receiver.AllowedAudiences, _options.Value.MaxEventsPerStream)
        {
            EventsRequested = eventsRequested,
            Description = description,
            Push = push,
            CreatedAt = now,
            LastActivityAt = now,
        };
    }

    /// <summary>The stream with <paramref name="streamId"/> if <paramref name="receiver"/> owns it; another receiver's stream is as absent (404).</summary>
    public async ValueTask<SsfStream?> FindAsync(string? streamId, RegisteredClient receiver, CancellationToken cancellationToken) =>
        streamId is null ? null
        : await Store.GetAsync(streamId, cancellationToken) is { } stream && stream.OwnerClientId == receiver.ClientId ? stream : null;

    public async ValueTask<IReadOnlyList<SsfStream>> ListForAsync(RegisteredClient receiver, CancellationToken cancellationToken) =>
        [.. (await Store.ListAsync(cancellationToken)).Where(s => s.OwnerClientId == receiver.ClientId).OrderBy(s => s.CreatedAt)];

    public async ValueTask<bool> DeleteAsync(string? streamId, RegisteredClient receiver, CancellationToken cancellationToken) =>
        await FindAsync(streamId, receiver, cancellationToken) is { } stream && await Store.DeleteAsync(stream.StreamId, cancellationToken);

    /// <summary>
    /// Changes the stream through the store (a read-modify-write, conditional on the version read, re-applied on a
    /// conflict) and records the receiver's activity; the state after, or null when the stream is gone.
    /// </summary>
    public ValueTask<SsfStream?> UpdateAsync(SsfStream stream, Action<SsfStream> change, CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow();
        return Store.UpdateAsync(stream.StreamId, s =>
        {
            change(s);
            s.LastActivityAt = now;
            return true;
        }, cancellationToken);
    }

    /// <summary>Queues a verification event (SSF 1.0 §8.1.4.1) echoing <paramref name="state"/>; false when the stream is disabled.</summary>
    public async ValueTask<bool> EnqueueVerificationAsync(SsfStream stream, string? state, DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        var entry = new SsfOutboxEntry { Jti = NewJti(), EventType = SsfProtocol.VerificationEventType, OccurredAt = now, State = state };
        var result = await Store.EnqueueAsync(stream, [entry], _options.Value.MaxEventsPerStream, cancellationToken);
        if (result.Dropped > 0)
        {
            LogOutboxFull(_logger, stream.StreamId, stream.OwnerClientId, result.Dropped);
        }

        if (result.Queued > 0)
        {
            NotifyDeliveryWork();
        }

        return result.Queued > 0;
    }

    /// <summary>
    /// RFC 8936 §2.4: applies the acknowledgements, then takes the next batch; waits first for this instance's queuing
    /// writes in flight. Records the receiver's activity (at most once a minute when nothing was acknowledged, so that
    /// polling does not write the stream row every time) and, when SETs were acknowledged, the delivery.
    /// </summary>
    public async ValueTask<SsfPollResult> PollAsync(SsfStream stream, IReadOnlyCollection<string> acknowledged, int maxEvents, CancellationToken cancellationToken)
    {
        await WhenQueuedAsync().WaitAsync(cancellationToken);
        var result = await Store.PollAsync(stream, acknowledged, maxEvents, cancellationToken);
        var now = _time.GetUtcNow();
        bool stale;
        lock (stream.Gate)
        {
            stale = now - stream.LastActivityAt >= TimeSpan.FromMinutes(1);
        }

        if (result.Acknowledged > 0 || stale)
        {
            await Store.UpdateAsync(stream.StreamId, s =>
            {
                s.LastActivityAt = now;
                if (result.Acknowledged > 0)
                {
                    s.LastDeliveryAt = now;
                }

                return true;
            }, cancellationToken);
        }

        return result;
    }

    public void SessionsEnded(IReadOnlyList<SessionRecord> sessions, SessionEndReason reason, DateTimeOffset endedAt)
    {
        if (_memory is { IsEmpty: true })
        {
            return;
        }

        // Idle and absolute expiry commit nothing, so they never get here; the guard keeps it so if that changes.
        if (reason.Kind is SessionEndKind.IdleTimeout or SessionEndKind.AbsoluteLifetime)
        {
            return;
        }

        string? txn = null;
        Queue(stream =>
        {
            if (!stream.DeliversSessionRevoked || _clients.Find(stream.OwnerClientId) is not { Type: ClientType.ResourceServer } receiver)
            {
                return null;
            }

            List<SsfOutboxEntry>? entries = null;
            foreach (var session in sessions)
            {
                if (!SharesAudience(session.Audiences, receiver.AllowedAudiences))
                {
                    continue;
                }

                txn ??= NewJti();
                (entries ??= []).Add(new SsfOutboxEntry
                {
                    Jti = NewJti(),
                    EventType = SsfProtocol.SessionRevokedEventType,
                    OccurredAt = endedAt,
                    Txn = txn,
                    SessionId = session.SessionId,
                    Subject = session.Subject,
                    Reason = reason,
                });
            }

            return entries;
        }, sessions.Count, reason.Code);
    }

    /// <summary>
    /// Queues on each stream the events <paramref name="entriesFor"/> makes for it (null or none: nothing for that stream).
    /// Started, not awaited: the change is committed and the request that made it must not wait for, or fail with, the
    /// outbox. With the memory store this completes before it returns. <paramref name="count"/> and
    /// <paramref name="what"/> name the change in the log when the stream list cannot be read.
    /// </summary>
    public void Queue(Func<SsfStream, IReadOnlyList<SsfOutboxEntry>?> entriesFor, int count, string what)
    {
        if (_memory is { IsEmpty: true })
        {
            return;
        }

        var queuing = QueueAsync(entriesFor, count, what);
        if (!queuing.IsCompleted)
        {
            _queuing.TryAdd(queuing, 0);
            _ = queuing.ContinueWith(static (done, state) => ((ConcurrentDictionary<Task, byte>)state!).TryRemove(done, out _), _queuing,
                CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }
    }

    /// <summary>Never throws: a failed write is logged and counted per stream, and the other streams still get theirs.</summary>
    private async Task QueueAsync(Func<SsfStream, IReadOnlyList<SsfOutboxEntry>?> entriesFor, int count, string what)
    {
        IReadOnlyList<SsfStream> streams;
        try
        {
            streams = await Store.ListAsync(CancellationToken.None);
        }
        catch (Exception ex)
        {
            LogOutboxWriteFailed(_logger, ex, "(all)", count, what);
            _outboxWriteFailures?.Add(count);
            return;
        }

        var pushQueued = false;
        foreach (var stream in streams)
        {
            if (entriesFor(stream) is not { Count: > 0 } entries)
            {
                continue;
            }

            try
            {
                var result = await Store.EnqueueAsync(stream, entries, _options.Value.MaxEventsPerStream, CancellationToken.None);
                if (result.Dropped > 0)
                {
                    LogOutboxFull(_logger, stream.StreamId, stream.OwnerClientId, result.Dropped);
                }

                if (result.Queued > 0)
                {
                    foreach (var entry in entries)
                    {
                        LogQueued(_logger, entry.EventType, entry.SessionId ?? entry.RevokedId ?? string.Empty, stream.StreamId, what);
                    }

                    pushQueued |= stream.Push is not null;
                }
            }
            catch (Exception ex)
            {
                LogOutboxWriteFailed(_logger, ex, stream.StreamId, entries.Count, what);
                _outboxWriteFailures?.Add(entries.Count);
                await CountLostAsync(stream.StreamId, entries.Count);
            }
        }

        if (pushQueued)
        {
            NotifyDeliveryWork();
        }
    }

    /// <summary>
    /// Counts events that could not be queued in the stream's <see cref="SsfStream.Dropped"/>, which its receiver reads
    /// (the stream configuration's <c>tokenservice_events_dropped</c>) to learn of the gap. Best effort: when the store
    /// that failed the write fails this too, the receiver learns of the outage from its unanswered verifications instead.
    /// </summary>
    private async Task CountLostAsync(string streamId, int count)
    {
        try
        {
            await Store.UpdateAsync(streamId, s =>
            {
                s.Dropped += count;
                return true;
            }, CancellationToken.None);
        }
        catch (Exception ex)
        {
            LogOutboxWriteFailed(_logger, ex, streamId, count, "the count of lost events");
        }
    }

    /// <summary>
    /// Cleanup (<see cref="ExpiredStateCleanup"/>, on the hosts' timer): deletes every stream without receiver activity
    /// (a poll, a change, an accepted push) for <c>SharedSignals:StreamInactivityTimeout</c>, with its held events; logged.
    /// </summary>
    public async Task<int> PurgeExpiredAsync(DateTimeOffset now, CancellationToken cancellationToken)
    {
        var timeout = _options.Value.StreamInactivityTimeout;
        var deleted = 0;
        foreach (var stream in await Store.ListAsync(cancellationToken))
        {
            DateTimeOffset lastActivity;
            lock (stream.Gate)
            {
                lastActivity = stream.LastActivityAt;
            }

            if (now - lastActivity >= timeout && await Store.DeleteAsync(stream.StreamId, cancellationToken))
            {
                LogInactiveStreamDeleted(_logger, stream.StreamId, stream.OwnerClientId, lastActivity);
                deleted++;
            }
        }

        return deleted;
    }

    /// <summary>Reads every stream's status (held events, drops, last delivery, failures in a row) for the gauges.</summary>
    public async Task<IReadOnlyList<SsfStreamStatusSnapshot>> RefreshStatusAsync(CancellationToken cancellationToken)
    {
        var snapshots = new List<SsfStreamStatusSnapshot>();
        foreach (var stream in await Store.ListAsync(cancellationToken))
        {
            var pending = await Store.CountAsync(stream, cancellationToken);
            lock (stream.Gate)
            {
                snapshots.Add(new SsfStreamStatusSnapshot(stream.StreamId, stream.OwnerClientId, stream.Push is not null, pending, stream.Dropped, stream.PushFailures, stream.LastDeliveryAt));
            }
        }

        _status = snapshots;
        return snapshots;
    }

    private IEnumerable<Measurement<long>> Observe(Func<SsfStreamStatusSnapshot, long> value) =>
        _status.Select(s => new Measurement<long>(value(s), Tags(s)));

    private IEnumerable<Measurement<double>> ObserveSinceLastDelivery()
    {
        var now = _time.GetUtcNow();
        return _status.Where(s => s.LastDeliveryAt is not null).Select(s => new Measurement<double>((now - s.LastDeliveryAt!.Value).TotalSeconds, Tags(s)));
    }

    /// <summary>Bounded tags: configured client ids, and at most <c>MaxStreamsPerReceiver</c> stream ids per client.</summary>
    private static KeyValuePair<string, object?>[] Tags(SsfStreamStatusSnapshot s) =>
    [
        new("tokenservice.client.id", s.ClientId),
        new("tokenservice.ssf.stream.id", s.StreamId),
        new("tokenservice.ssf.delivery", s.Push ? "push" : "poll"),
    ];

    /// <summary>Whether a session's or token's audiences include one of a receiver's (the rule introspection applies).</summary>
    internal static bool SharesAudience(IReadOnlyList<string> sessionAudiences, IReadOnlyList<string> receiverAudiences)
    {
        for (var i = 0; i < sessionAudiences.Count; i++)
        {
            for (var j = 0; j < receiverAudiences.Count; j++)
            {
                if (string.Equals(sessionAudiences[i], receiverAudiences[j], StringComparison.Ordinal))
                {
                    return true;
                }
            }
        }

        return false;
    }

    private static string NewStreamId() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));

    /// <summary>RFC 8417 §2.2: a <c>jti</c> unique per issuer; 128 random bits.</summary>
    internal static string NewJti() => Jose.Base64UrlEncoding.Encode(RandomNumberGenerator.GetBytes(16));

    [LoggerMessage(EventId = 2201, Level = LogLevel.Debug, Message = "{EventType} about {Subject} ({Reason}) queued on stream {StreamId}.")]
    private static partial void LogQueued(ILogger logger, string eventType, string subject, string streamId, string reason);

    [LoggerMessage(EventId = 2202, Level = LogLevel.Warning, Message = "Stream {StreamId} of receiver {ClientId} is full: its {Dropped} oldest event(s) were dropped (SharedSignals:MaxEventsPerStream).")]
    private static partial void LogOutboxFull(ILogger logger, string streamId, string clientId, long dropped);

    [LoggerMessage(EventId = 2214, Level = LogLevel.Error, Message = "Stream {StreamId}: {Count} event(s) ({Reason}) could not be queued; the change stays in force, the receiver's fallback (introspection) covers it.")]
    private static partial void LogOutboxWriteFailed(ILogger logger, Exception exception, string streamId, int count, string reason);

    [LoggerMessage(EventId = 2215, Level = LogLevel.Information, Message = "Stream {StreamId} of receiver {ClientId} deleted: no activity since {LastActivity} (SharedSignals:StreamInactivityTimeout).")]
    private static partial void LogInactiveStreamDeleted(ILogger logger, string streamId, string clientId, DateTimeOffset lastActivity);
}

/// <summary>One stream's status for the operator (docs/operations.md, the <c>tokenservice.ssf.stream.*</c> gauges).</summary>
public sealed record SsfStreamStatusSnapshot(string StreamId, string ClientId, bool Push, long Pending, long Dropped, long PushFailures, DateTimeOffset? LastDeliveryAt);
