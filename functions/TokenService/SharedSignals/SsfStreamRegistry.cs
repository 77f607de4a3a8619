using System.Collections.Concurrent;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TokenService.Clients;
using TokenService.Configuration;
using TokenService.Sessions;

namespace TokenService.SharedSignals;

/// <summary>
/// The event streams of this transmitter (SSF 1.0 §8.1), in memory, at most one per receiver client, and the
/// <see cref="ISessionEndedSink"/> that queues a CAEP session-revoked event (CAEP 1.0 §3.1) on every stream whose
/// receiver may hold tokens of the ended session: a receiver only ever learns of sessions whose audiences include one
/// of its own (the rule introspection applies, docs/api.md "Introspection"). Queuing signs nothing and does no I/O;
/// with no stream it returns at once without allocating.
/// </summary>
public sealed partial class SsfStreamRegistry(IClientStore clients, IOptions<SharedSignalsOptions> options, ILogger<SsfStreamRegistry> logger) : ISessionEndedSink
{
    private readonly ConcurrentDictionary<string, SsfStream> _streams = new(StringComparer.Ordinal);
    private readonly Lock _createGate = new();

    /// <summary>Released when push delivery may have work: an event queued, a stream enabled or its delivery changed.</summary>
    private readonly SemaphoreSlim _deliveryWork = new(0, int.MaxValue);

    /// <summary>Every stream (the push delivery service picks the push ones).</summary>
    public IReadOnlyList<SsfStream> All => [.. _streams.Values];

    /// <summary>Wakes <see cref="SsfPushDeliveryService"/>: a push stream may have something to send now.</summary>
    public void NotifyDeliveryWork()
    {
        if (_deliveryWork.CurrentCount == 0)
        {
            _deliveryWork.Release();
        }
    }

    /// <summary>Completes at the next <see cref="NotifyDeliveryWork"/> (at once if one came since the last wait).</summary>
    public Task WaitForDeliveryWorkAsync(CancellationToken cancellationToken) => _deliveryWork.WaitAsync(cancellationToken);

    /// <summary>
    /// Creates the receiver's stream, or null when it has one already (SSF 1.0 §8.1.1.1: a transmitter that allows one
    /// stream per receiver answers 409).
    /// </summary>
    public SsfStream? TryCreate(RegisteredClient receiver, IReadOnlyList<string>? eventsRequested, string? description)
    {
        lock (_createGate)
        {
            foreach (var existing in _streams.Values)
            {
                if (existing.OwnerClientId == receiver.ClientId)
                {
                    return null;
                }
            }

            var stream = new SsfStream(NewStreamId(), receiver.ClientId, receiver.AllowedAudiences, options.Value.MaxEventsPerStream)
            {
                EventsRequested = eventsRequested,
                Description = description,
            };
            _streams[stream.StreamId] = stream;
            return stream;
        }
    }

    /// <summary>The stream with <paramref name="streamId"/> if <paramref name="receiver"/> owns it; another receiver's stream is as absent (404).</summary>
    public SsfStream? Find(string? streamId, RegisteredClient receiver) =>
        streamId is not null && _streams.TryGetValue(streamId, out var stream) && stream.OwnerClientId == receiver.ClientId ? stream : null;

    public IReadOnlyList<SsfStream> ListFor(RegisteredClient receiver) =>
        [.. _streams.Values.Where(s => s.OwnerClientId == receiver.ClientId)];

    public bool Delete(string? streamId, RegisteredClient receiver)
    {
        lock (_createGate)
        {
            return Find(streamId, receiver) is { } stream && _streams.TryRemove(stream.StreamId, out _);
        }
    }

    /// <summary>Queues a verification event (SSF 1.0 §8.1.4.1) echoing <paramref name="state"/>; false when the stream is disabled.</summary>
    public bool EnqueueVerification(SsfStream stream, string? state, DateTimeOffset now)
    {
        var entry = new SsfOutboxEntry { Jti = NewJti(), EventType = SsfProtocol.VerificationEventType, OccurredAt = now, State = state };
        bool queued;
        lock (stream.Gate)
        {
            queued = stream.EnqueueLocked(entry);
        }

        if (queued)
        {
            NotifyDeliveryWork();
        }

        return queued;
    }

    public void SessionsEnded(IReadOnlyList<SessionRecord> sessions, SessionEndReason reason, DateTimeOffset endedAt)
    {
        if (_streams.IsEmpty)
        {
            return;
        }

        // Idle and absolute expiry commit nothing, so they never get here; the guard keeps it so if that changes.
        if (reason.Kind is SessionEndKind.IdleTimeout or SessionEndKind.AbsoluteLifetime)
        {
            return;
        }

        string? txn = null;
        var pushQueued = false;
        foreach (var stream in _streams.Values)
        {
            if (!stream.DeliversSessionRevoked || clients.Find(stream.OwnerClientId) is not { Type: ClientType.ResourceServer } receiver)
            {
                continue;
            }

            var audiences = receiver.AllowedAudiences;
            foreach (var session in sessions)
            {
                if (!SharesAudience(session.Audiences, audiences))
                {
                    continue;
                }

                txn ??= NewJti();
                var entry = new SsfOutboxEntry
                {
                    Jti = NewJti(),
                    EventType = SsfProtocol.SessionRevokedEventType,
                    OccurredAt = endedAt,
                    Txn = txn,
                    SessionId = session.SessionId,
                    Subject = session.Subject,
                    Reason = reason,
                };
                bool queued;
                long dropped;
                lock (stream.Gate)
                {
                    var before = stream.Dropped;
                    queued = stream.EnqueueLocked(entry);
                    dropped = stream.Dropped - before;
                }

                if (dropped > 0)
                {
                    LogOutboxFull(logger, stream.StreamId, stream.OwnerClientId);
                }

                if (queued)
                {
                    LogQueued(logger, session.SessionId, stream.StreamId, reason.Code);
                    if (stream.Push is not null)
                    {
                        pushQueued = true;
                    }
                }
            }
        }

        if (pushQueued)
        {
            NotifyDeliveryWork();
        }
    }

    private static bool SharesAudience(IReadOnlyList<string> sessionAudiences, IReadOnlyList<string> receiverAudiences)
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

    [LoggerMessage(EventId = 2201, Level = LogLevel.Debug, Message = "Session {SessionId} ended ({Reason}): session-revoked queued on stream {StreamId}.")]
    private static partial void LogQueued(ILogger logger, string sessionId, string streamId, string reason);

    [LoggerMessage(EventId = 2202, Level = LogLevel.Warning, Message = "Stream {StreamId} of receiver {ClientId} is full: its oldest event was dropped (SharedSignals:MaxEventsPerStream).")]
    private static partial void LogOutboxFull(ILogger logger, string streamId, string clientId);
}
