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
/// The limit is a sliding window of <see cref="SegmentsPerWindow"/> segments whose permits come back one segment
/// late, with a bounded FIFO queue, on <see cref="TimeProvider"/>. A permit taken during a segment returns
/// <c>Window + one segment</c> after that segment began, so more than a window passes between two uses of it: whatever
/// the phase of the vault's own window, it never sees more than the limit (a plain segmented window admits up to one
/// segment's share more, which drew 429s from the in-test vault). The price is one segment of rate: limit ×
/// 20 / 21 per window. It is our own, not System.Threading.RateLimiting's
/// <c>SlidingWindowRateLimiter</c>: the library takes no <see cref="TimeProvider"/>, and even with
/// <c>AutoReplenishment = false</c> its <c>TryReplenish</c> does nothing until the replenishment period has passed on
/// the monotonic clock (checked on .NET 10), so a fake clock cannot drive it and the throttling tests would have to pace
/// the wall clock.
/// </remarks>
internal sealed class VaultSignThrottle : IDisposable
{
    internal const int SegmentsPerWindow = 20;
    internal static readonly TimeSpan FailureCooldown = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan[] Backoff = [TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(4), TimeSpan.FromSeconds(8), TimeSpan.FromSeconds(16)];

    private readonly ITimer _replenish;
    private readonly TimeSpan _segmentLength;
    private readonly TimeProvider _time;
    private readonly Lock _lock = new();
    private readonly int[] _segments = new int[SegmentsPerWindow + 1];
    private readonly Queue<Waiter> _queue = new();
    private readonly int _queueLimit;
    private int _segment;
    private int _used;
    private int _waiting;
    private long _backoffUntilTicks;
    private long _unhealthyUntilTicks;
    private int _throttledWindows;
    private bool _replenishing;

    private sealed class Waiter() : TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <param name="permitsPerWindow">Sign calls admitted per <paramref name="window"/>.</param>
    /// <param name="window">The vault's limit window.</param>
    /// <param name="maxWait">The dependency budget: how long the queue may take to drain bounds its length.</param>
    /// <param name="time">The clock of the replenishment timer and the backoff windows.</param>
    public VaultSignThrottle(int permitsPerWindow, TimeSpan window, TimeSpan maxWait, TimeProvider time)
    {
        _time = time;
        PermitsPerWindow = permitsPerWindow;
        Window = window;

        // At most what the limit admits within one budget waits; a request beyond that could not be signed in time,
        // so it is refused at once (503 with Retry-After) rather than queued until its budget runs out.
        _queueLimit = (int)Math.Min(int.MaxValue, Math.Ceiling(permitsPerWindow * Math.Max(1, maxWait / window)));
        // Started by the first permit taken and stopped once every permit is back (see NextSegment): an idle instance
        // (most of a Functions app's life) does not wake twenty times a window for nothing.
        _segmentLength = TimeSpan.FromTicks(window.Ticks / SegmentsPerWindow);
        _replenish = time.CreateTimer(static state => ((VaultSignThrottle)state!).NextSegment(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    public int PermitsPerWindow { get; }

    public TimeSpan Window { get; }

    /// <summary>Permits free now less requests already queued: higher is less loaded.</summary>
    public long Headroom
    {
        get
        {
            lock (_lock)
            {
                return PermitsPerWindow - _used - _waiting;
            }
        }
    }

    /// <summary>Requests waiting for a permit.</summary>
    public long Queued => Volatile.Read(ref _waiting);

    /// <summary>How long the shared backoff window after a 429 still lasts (zero when none is open).</summary>
    public TimeSpan BackoffRemaining => Remaining(Interlocked.Read(ref _backoffUntilTicks));

    /// <summary>Whether the vault failed (5xx, timeout) recently enough to be avoided while others are available.</summary>
    public bool RecentlyFailed => Remaining(Interlocked.Read(ref _unhealthyUntilTicks)) > TimeSpan.Zero;

    /// <summary>Waits for a permit within <paramref name="cancellationToken"/> (the request's budget); false when the queue is full.</summary>
    public async ValueTask<bool> AcquireAsync(CancellationToken cancellationToken)
    {
        Waiter waiter;
        lock (_lock)
        {
            if (_queue.Count == 0 && _used < PermitsPerWindow)
            {
                Take();
                return true;
            }

            if (_waiting >= _queueLimit)
            {
                return false;
            }

            waiter = new Waiter();
            _queue.Enqueue(waiter);
            _waiting++;
        }

        await using var registration = cancellationToken.Register(static state =>
        {
            var (throttle, waiter, token) = ((VaultSignThrottle, Waiter, CancellationToken))state!;
            lock (throttle._lock)
            {
                // Left in the queue, skipped when its turn comes; no permit is taken for it.
                if (waiter.TrySetCanceled(token))
                {
                    throttle._waiting--;
                }
            }
        }, (this, waiter, cancellationToken));
        return await waiter.Task;
    }

    /// <summary>The window slides by one segment: the permits of the segment that left it return, and waiters take them in order.</summary>
    private void NextSegment()
    {
        lock (_lock)
        {
            // The ring holds the window's segments and one more: the slot coming round is the permits taken
            // SegmentsPerWindow + 1 segments ago, more than a window before any use of them now.
            _segment = (_segment + 1) % _segments.Length;
            _used -= _segments[_segment];
            _segments[_segment] = 0;
            while (_used < PermitsPerWindow && _queue.TryDequeue(out var waiter))
            {
                if (waiter.TrySetResult(true))
                {
                    _waiting--;
                    Take();
                }
            }

            // Every permit is back and nobody waits: all segments are empty, so the window can stand still until the
            // next permit is taken. A permit taken then returns SegmentsPerWindow + 1 ticks after the restart, still
            // more than a window later. (A tick already dispatched when the timer stops can advance the window one
            // segment early once; the extra segment of the ring absorbs it.)
            if (_used == 0 && _waiting == 0 && _replenishing)
            {
                _replenishing = false;
                _replenish.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            }
        }
    }

    private void Take()
    {
        _used++;
        _segments[_segment]++;
        if (!_replenishing)
        {
            _replenishing = true;
            _replenish.Change(_segmentLength, _segmentLength);
        }
    }

    /// <summary>Whether the replenishment timer runs (it stops while no permit is out).</summary>
    internal bool Replenishing
    {
        get
        {
            lock (_lock)
            {
                return _replenishing;
            }
        }
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
        lock (_lock)
        {
            while (_queue.TryDequeue(out var waiter))
            {
                waiter.TrySetException(new DependencyUnavailableException("keyvault", "The signing service is shutting down."));
            }
        }
    }
}
