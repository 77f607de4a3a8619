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
    private DateTimeOffset? _answeredVerificationAskedAt;
    private DateTimeOffset? _lastPollAt;
    private DateTimeOffset? _healthySince;

    public SharedSignalsDelivery Delivery => options.SharedSignals.Delivery;

    public bool Enabled => Delivery != SharedSignalsDelivery.None;

    /// <summary>Most sessions remembered as revoked; beyond it the stream counts as having a gap (below).</summary>
    public int MaxRevokedSessions => options.MaxStatusCacheEntries;

    /// <summary>Whether <paramref name="sessionId"/> was revoked by an event (and is still remembered at <paramref name="now"/>).</summary>
    public bool IsSessionRevoked(string sessionId, DateTimeOffset now) =>
        _revokedSessions.TryGetValue(sessionId, out var until) && now < until;

    public int RevokedSessionCount => _revokedSessions.Count;

    /// <summary>
    /// Remembers a session revoked by an event until <see cref="SharedSignalsReceiverOptions.RevokedSessionRetention"/>
    /// has passed. When the set is full even after forgetting what has expired, the event cannot be remembered: that is a
    /// gap, so the stream stops being healthy until the next verification (the cache falls back to bounded staleness and
    /// introspection will say the session ended).
    /// </summary>
    public void RevokeSession(string sessionId, DateTimeOffset now)
    {
        if (_revokedSessions.Count >= MaxRevokedSessions && !_revokedSessions.ContainsKey(sessionId))
        {
            foreach (var (sid, until) in _revokedSessions)
            {
                if (until <= now)
                {
                    _revokedSessions.TryRemove(sid, out _);
                }
            }

            if (_revokedSessions.Count >= MaxRevokedSessions)
            {
                MarkGap();
                return;
            }
        }

        _revokedSessions[sessionId] = now + options.SharedSignals.RevokedSessionRetention;
    }

    /// <summary>Whether the stream is healthy at <paramref name="now"/> (see the remarks).</summary>
    public bool IsHealthy(DateTimeOffset now)
    {
        lock (_gate)
        {
            return IsHealthyLocked(now);
        }
    }

    /// <summary>When the stream last became healthy, if it is healthy at <paramref name="now"/>; null otherwise.</summary>
    public DateTimeOffset? HealthySince(DateTimeOffset now)
    {
        lock (_gate)
        {
            return IsHealthyLocked(now) ? _healthySince : null;
        }
    }

    /// <summary>A verification event asked for at <paramref name="askedAt"/> arrived at <paramref name="now"/>.</summary>
    public void VerificationAnswered(DateTimeOffset askedAt, DateTimeOffset now) => Update(now, () =>
    {
        if (_answeredVerificationAskedAt is not { } previous || askedAt > previous)
        {
            _answeredVerificationAskedAt = askedAt;
        }
    });

    /// <summary>A poll succeeded at <paramref name="now"/>.</summary>
    public void PollSucceeded(DateTimeOffset now) => Update(now, () => _lastPollAt = now);

    /// <summary>
    /// Events may have been lost (the stream was lost or re-created, an event could not be remembered): unhealthy until
    /// a verification asked for after now comes back.
    /// </summary>
    public void MarkGap()
    {
        lock (_gate)
        {
            _answeredVerificationAskedAt = null;
            _healthySince = null;
        }
    }

    private void Update(DateTimeOffset now, Action change)
    {
        lock (_gate)
        {
            var was = IsHealthyLocked(now);
            change();
            if (!was && IsHealthyLocked(now))
            {
                _healthySince = now;
            }
        }
    }

    private bool IsHealthyLocked(DateTimeOffset now)
    {
        var receiver = options.SharedSignals;
        if (!Enabled || _answeredVerificationAskedAt is not { } asked || now - asked > 2 * receiver.VerificationInterval)
        {
            return false;
        }

        return Delivery != SharedSignalsDelivery.Poll
            || (_lastPollAt is { } polled && now - polled <= (2 * receiver.PollInterval) + PollTimeout);
    }
}
