using System.Threading.RateLimiting;

namespace TokenService.Azure.KeyVault;

/// <summary>
/// One vault's sign admission: a client-side limiter that keeps sign calls under the vault's documented rate (Key
/// Vault Premium: 2,000 HSM signs per 10 s for RSA-2048 and P-256), queueing callers briefly when it is reached, and
/// one shared backoff window after a 429, so that concurrent requests wait for the same window instead of each
/// retrying on its own schedule (no retry storm). The window is Key Vault's <c>Retry-After</c> when it sends one, else
/// Microsoft's guidance for Key Vault throttling: 1, 2, 4, 8, 16 s for consecutive throttled windows, reset by a
/// success. A vault that answered 5xx or timed out is avoided for <see cref="FailureCooldown"/> when others exist.
/// </summary>
/// <remarks>
/// The limit is System.Threading.RateLimiting's <see cref="SlidingWindowRateLimiter"/> (ten segments per window, so
/// no window of the vault's sees more than the limit plus one segment's share). The library keeps its own time on the
/// monotonic clock and takes no <see cref="TimeProvider"/>, so it runs without auto-replenishment and a
/// <see cref="TimeProvider"/> timer moves it one segment per tick: tests drive it with a fake clock.
/// </remarks>
internal sealed class VaultSignThrottle : IDisposable
{
    internal const int SegmentsPerWindow = 10;
    internal static readonly TimeSpan FailureCooldown = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan[] Backoff = [TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(4), TimeSpan.FromSeconds(8), TimeSpan.FromSeconds(16)];

    private readonly SlidingWindowRateLimiter _limiter;
    private readonly ITimer _replenish;
    private readonly TimeProvider _time;
    private readonly Lock _lock = new();
    private long _backoffUntilTicks;
    private long _unhealthyUntilTicks;
    private int _throttledWindows;

    public VaultSignThrottle(int permitsPerWindow, TimeSpan window, TimeProvider time)
    {
        _time = time;
        PermitsPerWindow = permitsPerWindow;
        Window = window;
        _limiter = new SlidingWindowRateLimiter(new SlidingWindowRateLimiterOptions
        {
            PermitLimit = permitsPerWindow,
            Window = window,
            SegmentsPerWindow = SegmentsPerWindow,
            AutoReplenishment = false,

            // At most one window's worth of requests wait; beyond that a request could not be signed within any
            // sensible budget, so it is refused at once (503) rather than queued.
            QueueLimit = permitsPerWindow,
            QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
        });
        var segment = TimeSpan.FromTicks(window.Ticks / SegmentsPerWindow);
        _replenish = time.CreateTimer(static state => ((SlidingWindowRateLimiter)state!).TryReplenish(), _limiter, segment, segment);
    }

    public int PermitsPerWindow { get; }

    public TimeSpan Window { get; }

    /// <summary>Permits free now less requests already queued: higher is less loaded.</summary>
    public long Headroom => _limiter.GetStatistics() is { } s ? s.CurrentAvailablePermits - s.CurrentQueuedCount : 0;

    /// <summary>How long the shared backoff window after a 429 still lasts (zero when none is open).</summary>
    public TimeSpan BackoffRemaining => Remaining(Interlocked.Read(ref _backoffUntilTicks));

    /// <summary>Whether the vault failed (5xx, timeout) recently enough to be avoided while others are available.</summary>
    public bool RecentlyFailed => Remaining(Interlocked.Read(ref _unhealthyUntilTicks)) > TimeSpan.Zero;

    /// <summary>Waits for a permit within <paramref name="cancellationToken"/> (the request's budget).</summary>
    public async ValueTask<bool> AcquireAsync(CancellationToken cancellationToken)
    {
        using var lease = await _limiter.AcquireAsync(1, cancellationToken);

        // A window limiter's permits come back with the window, not when the lease is disposed.
        return lease.IsAcquired;
    }

    /// <summary>
    /// A 429: opens the shared backoff window unless one is open already. Requests that were in flight when the first
    /// 429 came back join that window rather than lengthen it, so one throttling episode costs one window.
    /// </summary>
    public TimeSpan OnThrottled(TimeSpan? retryAfter)
    {
        lock (_lock)
        {
            var now = _time.GetUtcNow().UtcTicks;
            if (now < _backoffUntilTicks)
            {
                return TimeSpan.FromTicks(_backoffUntilTicks - now);
            }

            var delay = retryAfter is { } after && after > TimeSpan.Zero ? after : Backoff[Math.Min(_throttledWindows, Backoff.Length - 1)];
            _throttledWindows++;
            Interlocked.Exchange(ref _backoffUntilTicks, now + delay.Ticks);
            return delay;
        }
    }

    public void OnSuccess()
    {
        if (Volatile.Read(ref _throttledWindows) != 0)
        {
            lock (_lock)
            {
                _throttledWindows = 0;
            }
        }

        if (Interlocked.Read(ref _unhealthyUntilTicks) != 0)
        {
            Interlocked.Exchange(ref _unhealthyUntilTicks, 0);
        }
    }

    public void OnFailed() => Interlocked.Exchange(ref _unhealthyUntilTicks, (_time.GetUtcNow() + FailureCooldown).UtcTicks);

    private TimeSpan Remaining(long untilTicks)
    {
        if (untilTicks == 0)
        {
            return TimeSpan.Zero;
        }

        var left = untilTicks - _time.GetUtcNow().UtcTicks;
        return left > 0 ? TimeSpan.FromTicks(left) : TimeSpan.Zero;
    }

    public void Dispose()
    {
        _replenish.Dispose();
        _limiter.Dispose();
    }
}
