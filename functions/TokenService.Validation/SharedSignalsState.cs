using System.Collections.Concurrent;

namespace TokenService.Validation;

/// <summary>
/// What the Shared Signals receiver of one scheme knows and the status cache reads: the sessions revoked by events, and
/// the stream's health. Health is computed at read time from when things last happened (on the scheme's clock), never
/// stored as a flag a missed timer could leave stale.
/// </summary>
/// <remarks>
/// Healthy means: the newest verification event this instance asked for and received (SSF 1.0 §8.1.4) was asked for
/// within twice <see cref="SharedSignalsReceiverOptions.VerificationInterval"/>, and for poll the last poll succeeded
/// within twice <see cref="SharedSignalsReceiverOptions.PollInterval"/> plus the poll's timeout. The transmitter
/// delivers a stream's events in order, so a verification answered means every event queued before it was asked for
/// has been delivered: the events of a healthy stream are at most that window late. <see cref="HealthySince"/> is when
/// the stream last became healthy; statuses learned before it were learned across a gap and are not trusted beyond
/// <see cref="SessionCheckOptions.StatusCacheDuration"/>.
/// </remarks>
internal sealed class SharedSignalsState(SessionCheckOptions options)
{
    /// <summary>How long one poll may take before it counts as failed; part of the poll health window.</summary>
    public static readonly TimeSpan PollTimeout = TimeSpan.FromSeconds(10);

    private readonly Lock _gate = new();
    private readonly ConcurrentDictionary<string, DateTimeOffset> _revokedSessions = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, DateTimeOffset> _revokedTokens = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, DateTimeOffset> _revokedKeys = new(StringComparer.Ordinal);
    private volatile bool _deliversTokenRevocations;

    // UTC ticks, 0 for never. Written under _gate, read without it (every request reads them: no lock on the hot path).
    // A writer stores _healthySince before the times that make the stream healthy, and a reader reads the times first
    // (HealthySince), so a reader that sees the new times sees the new _healthySince too.
    private long _answeredVerificationAskedAt;
    private long _lastPollAt;
    private long _healthySince;

    public SharedSignalsDelivery Delivery => options.SharedSignals.Delivery;

    public bool Enabled => Delivery != SharedSignalsDelivery.None;

    /// <summary>Most sessions remembered as revoked; beyond it the stream counts as having a gap (below).</summary>
    public int MaxRevokedSessions => options.MaxStatusCacheEntries;

    /// <summary>Whether <paramref name="sessionId"/> was revoked by an event (and is still remembered at <paramref name="now"/>).</summary>
    public bool IsSessionRevoked(string sessionId, DateTimeOffset now) =>
        _revokedSessions.TryGetValue(sessionId, out var until) && now < until;

    public int RevokedSessionCount => _revokedSessions.Count;

    /// <summary>Whether the access token <paramref name="jti"/> was revoked by an access-token-revoked event.</summary>
    public bool IsTokenRevoked(string jti, DateTimeOffset now) =>
        !_revokedTokens.IsEmpty && _revokedTokens.TryGetValue(jti, out var until) && now < until;

    /// <summary>Whether tokens signed with <paramref name="kid"/> are refused since a signing-key-revoked event.</summary>
    public bool IsKeyRevoked(string kid, DateTimeOffset now) =>
        !_revokedKeys.IsEmpty && _revokedKeys.TryGetValue(kid, out var until) && now < until;

    /// <summary>
    /// Whether the stream delivers the token service's access-token-revoked events (its <c>events_delivered</c>, SSF 1.0
    /// §8.1.1): only then does a healthy stream tell of every way a token of a live session can stop being valid, so that
    /// a token issued while the stream was healthy needs no introspection (<see cref="SessionStatusChecker"/>).
    /// </summary>
    public bool DeliversTokenRevocations
    {
        get => _deliversTokenRevocations;
        set => _deliversTokenRevocations = value;
    }

    /// <summary>
    /// Remembers an access token revoked on its own until its <c>exp</c> (the event's <c>token_exp</c>; without one,
    /// <see cref="SharedSignalsReceiverOptions.RevokedSessionRetention"/>). A full set is a gap, as for sessions.
    /// </summary>
    public void RevokeToken(string jti, DateTimeOffset until, DateTimeOffset now) => Remember(_revokedTokens, jti, until, now);

    /// <summary>Refuses tokens signed with <paramref name="kid"/> for <see cref="SharedSignalsReceiverOptions.RevokedSessionRetention"/>.</summary>
    public void RevokeKey(string kid, DateTimeOffset now) => Remember(_revokedKeys, kid, now + options.SharedSignals.RevokedSessionRetention, now);

    private void Remember(ConcurrentDictionary<string, DateTimeOffset> set, string key, DateTimeOffset until, DateTimeOffset now)
    {
        if (set.Count >= MaxRevokedSessions && !set.ContainsKey(key))
        {
            foreach (var (k, u) in set)
            {
                if (u <= now)
                {
                    set.TryRemove(k, out _);
                }
            }

            if (set.Count >= MaxRevokedSessions)
            {
                MarkGap();
                return;
            }
        }

        set[key] = until;
    }

    /// <summary>
    /// Remembers a session revoked by an event until <see cref="SharedSignalsReceiverOptions.RevokedSessionRetention"/>
    /// has passed. When the set is full even after forgetting what has expired, the event cannot be remembered: that is a
    /// gap, so the stream stops being healthy until the next verification (the cache falls back to bounded staleness and
    /// introspection will say the session ended).
    /// </summary>
    public void RevokeSession(string sessionId, DateTimeOffset now) =>
        Remember(_revokedSessions, sessionId, now + options.SharedSignals.RevokedSessionRetention, now);

    /// <summary>Whether the stream is healthy at <paramref name="now"/> (see the remarks).</summary>
    public bool IsHealthy(DateTimeOffset now) =>
        IsHealthy(now.UtcTicks, Volatile.Read(ref _answeredVerificationAskedAt), Volatile.Read(ref _lastPollAt));

    /// <summary>When the stream last became healthy, if it is healthy at <paramref name="now"/>; null otherwise.</summary>
    public DateTimeOffset? HealthySince(DateTimeOffset now)
    {
        // The times first, then _healthySince: a writer stores them the other way round (above), so the _healthySince
        // read here is at least as new as the times that make the stream healthy.
        var answered = Volatile.Read(ref _answeredVerificationAskedAt);
        var polled = Volatile.Read(ref _lastPollAt);
        var since = Volatile.Read(ref _healthySince);
        return since != 0 && IsHealthy(now.UtcTicks, answered, polled) ? new DateTimeOffset(since, TimeSpan.Zero) : null;
    }

    /// <summary>A verification event asked for at <paramref name="askedAt"/> arrived at <paramref name="now"/>.</summary>
    public void VerificationAnswered(DateTimeOffset askedAt, DateTimeOffset now)
    {
        lock (_gate)
        {
            var answered = Math.Max(_answeredVerificationAskedAt, askedAt.UtcTicks);
            BecomeHealthyIfSo(now, answered, _lastPollAt);
            Volatile.Write(ref _answeredVerificationAskedAt, answered);
        }
    }

    /// <summary>A poll succeeded at <paramref name="now"/>.</summary>
    public void PollSucceeded(DateTimeOffset now)
    {
        lock (_gate)
        {
            var polled = Math.Max(_lastPollAt, now.UtcTicks);
            BecomeHealthyIfSo(now, _answeredVerificationAskedAt, polled);
            Volatile.Write(ref _lastPollAt, polled);
        }
    }

    /// <summary>
    /// Events may have been lost (the stream was lost or re-created, an event could not be remembered): unhealthy until
    /// a verification asked for after now comes back.
    /// </summary>
    public void MarkGap()
    {
        lock (_gate)
        {
            Volatile.Write(ref _answeredVerificationAskedAt, 0);
            Volatile.Write(ref _healthySince, 0);
        }
    }

    /// <summary>Records <paramref name="now"/> as when the stream became healthy if it was not and the new times make it so.</summary>
    private void BecomeHealthyIfSo(DateTimeOffset now, long answered, long polled)
    {
        if (!IsHealthy(now.UtcTicks, _answeredVerificationAskedAt, _lastPollAt) && IsHealthy(now.UtcTicks, answered, polled))
        {
            Volatile.Write(ref _healthySince, now.UtcTicks);
        }
    }

    private bool IsHealthy(long now, long answered, long polled)
    {
        var receiver = options.SharedSignals;
        if (!Enabled || answered == 0 || now - answered > (2 * receiver.VerificationInterval).Ticks)
        {
            return false;
        }

        return Delivery != SharedSignalsDelivery.Poll
            || (polled != 0 && now - polled <= ((2 * receiver.PollInterval) + PollTimeout).Ticks);
    }
}
