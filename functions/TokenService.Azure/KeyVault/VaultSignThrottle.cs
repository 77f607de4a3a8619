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
/// <para>
/// The allowance per window is adaptive, so that several instances signing with one vault share its limit without a
/// coordinator: it starts at the configured <c>Keys:SignsPerWindow</c> (the ceiling); a 429
/// multiplies it by <see cref="DecreaseFactor"/>, at most once per window, applied to what this instance actually used
/// in the window when that is less (the rate it was sending, not an allowance it never reached: RFC 5681 §3.1 takes the
/// flight size, not the window, for the same reason), never below <see cref="FloorShare"/> of the ceiling; each window
/// in which signs succeeded, none was throttled, requests had to queue for a permit and 90 % of the allowance was used
/// adds <see cref="IncreaseShare"/> of the ceiling, up to the ceiling. Queued requests are released paced (the
/// allowance's share of each segment), and a permit no call spent comes back (<see cref="Return"/>). Additive increase, multiplicative decrease is what
/// makes independent senders converge to equal shares of one capacity (Chiu and Jain, 1989; RFC 5681's congestion
/// avoidance). Growing only while the allowance binds keeps an instance with little demand from growing back to the
/// whole vault and then bursting into it (RFC 7661 §4.3, for the same reason in TCP). All of it on <see cref="TimeProvider"/>.
/// </para>
/// </remarks>
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

    /// <summary>A 429 multiplies the allowance by this.</summary>
    internal const double DecreaseFactor = 0.85;

    /// <summary>A window of queued demand without a 429 adds this share of the configured limit.</summary>
    internal const double IncreaseShare = 0.02;

    /// <summary>The allowance never falls below this share of the configured limit (and never below one sign).</summary>
    internal const double FloorShare = 0.01;

    internal static readonly TimeSpan FailureCooldown = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan[] Backoff = [TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(4), TimeSpan.FromSeconds(8), TimeSpan.FromSeconds(16)];

    private readonly ITimer _replenish;
    private readonly ITimer _delayedRelease;
    private long _releaseJitterTicks;
    private bool _releaseScheduled;
    private readonly TimeProvider _time;
    private readonly Lock _lock = new();
    private readonly int[] _segments = new int[SegmentsPerWindow + 1];
    private readonly Queue<Waiter> _queue = new();
    private int _segment;
    private long _segmentNumber;
    private int _used;
    private int _waiting;
    private long _backoffWaiting;
    private long _calling;
    private long _backoffUntilTicks;
    private long _unhealthyUntilTicks;
    private int _throttledWindows;
    private readonly double _budgetWindows;
    private readonly double _floor;
    private double _allowance;
    private int _segmentsThisWindow;
    private bool _replenishing;
    private readonly TimeSpan _segmentLength;
    private int _takenThisWindow;
    private double _releaseCredit;
    private long _lastDecreaseTicks;
    private bool _queuedThisWindow;
    private bool _throttledThisWindow;
    private volatile bool _succeededThisWindow;

    private sealed class Waiter() : TaskCompletionSource<Permit>(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>One admitted sign call: the segment it counts in (by its number since start and its slot in the ring).</summary>
    internal readonly record struct Permit(long Segment, int Slot);

    /// <param name="permitsPerWindow">Sign calls admitted per <paramref name="window"/> at most: the allowance's start and ceiling.</param>
    /// <param name="window">The vault's limit window.</param>
    /// <param name="maxWait">The dependency budget: how long the queue may take to drain bounds its length.</param>
    /// <param name="time">The clock of the replenishment timer and the backoff windows.</param>
    public VaultSignThrottle(int permitsPerWindow, TimeSpan window, TimeSpan maxWait, TimeProvider time)
    {
        _time = time;
        PermitsPerWindow = permitsPerWindow;
        Window = window;

        _allowance = permitsPerWindow;
        _floor = Math.Max(1, Math.Ceiling(permitsPerWindow * FloorShare));
        _budgetWindows = Math.Max(1, maxWait / window);
        // Started by the first permit taken and stopped once every permit is back (see NextSegment): an idle instance
        // (most of a Functions app's life) does not wake twenty times a window for nothing.
        _segmentLength = TimeSpan.FromTicks(window.Ticks / SegmentsPerWindow);
        _replenish = time.CreateTimer(static state => ((VaultSignThrottle)state!).NextSegment(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);

        _delayedRelease = time.CreateTimer(static state => ((VaultSignThrottle)state!).DelayedRelease(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        ReleaseJitter = _segmentLength / 2;
    }

    /// <summary>
    /// The longest random delay between a segment's start and the release of the requests queued for it: half a
    /// segment, so the release comes well before the next tick (a permit counts in the segment in which it is taken,
    /// so taking it later in the segment never shortens its way round the window). Zero releases at the segment's
    /// start: tests that time single requests to the tick set it.
    /// </summary>
    internal TimeSpan ReleaseJitter
    {
        get => TimeSpan.FromTicks(Interlocked.Read(ref _releaseJitterTicks));
        set => Interlocked.Exchange(ref _releaseJitterTicks, Math.Clamp(value.Ticks, 0, _segmentLength.Ticks / 2));
    }

    public int PermitsPerWindow { get; }

    public TimeSpan Window { get; }

    /// <summary>Signs this instance admits per <see cref="Window"/> now: <see cref="PermitsPerWindow"/>, lowered by 429s and regained while signs succeed.</summary>
    public int Allowance
    {
        get
        {
            lock (_lock)
            {
                return Limit;
            }
        }
    }

    /// <summary>Permits free now less requests already queued: higher is less loaded.</summary>
    public long Headroom
    {
        get
        {
            lock (_lock)
            {
                return Limit - _used - _waiting;
            }
        }
    }

    /// <summary>The allowance in whole permits (under the lock).</summary>
    private int Limit => (int)_allowance;

    /// <summary>
    /// At most what the allowance admits within one budget waits (under the lock); a request beyond that could not be
    /// signed in time, so it is refused at once (503 with Retry-After) rather than queued until its budget runs out.
    /// </summary>
    /// <remarks>
    /// Once the vault has throttled (the allowance is below the ceiling), the queue holds what the allowance admits in
    /// half the budget: a request released from it may still meet a backoff window and a retry, and one that had
    /// queued for the whole budget would run out in that window, its permit spent on no signature.
    /// </remarks>
    private int QueueLimit => (int)Math.Min(int.MaxValue, Math.Ceiling(_allowance * (_allowance < PermitsPerWindow ? _budgetWindows / 2 : _budgetWindows)));

    /// <summary>Requests waiting for a permit.</summary>
    public long Queued => Volatile.Read(ref _waiting);

    /// <summary>Requests waiting for the backoff window to end.</summary>
    public long WaitingForBackoff => Volatile.Read(ref _backoffWaiting);

    /// <summary>Sign calls on their way to the vault or back.</summary>
    public long Calling => Volatile.Read(ref _calling);

    /// <summary>Waits <paramref name="wait"/> (the backoff window) on the clock, within the request's budget.</summary>
    public async Task WaitForBackoffAsync(TimeSpan wait, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _backoffWaiting);
        try
        {
            await Task.Delay(wait, _time, cancellationToken);
        }
        finally
        {
            Interlocked.Decrement(ref _backoffWaiting);
        }
    }

    /// <summary>Counts a sign call from its start until the caller disposes the result.</summary>
    public CallScope StartCall()
    {
        Interlocked.Increment(ref _calling);
        return new CallScope(this);
    }

    internal readonly struct CallScope(VaultSignThrottle throttle) : IDisposable
    {
        public void Dispose() => Interlocked.Decrement(ref throttle._calling);
    }

    /// <summary>How long the shared backoff window after a 429 still lasts (zero when none is open).</summary>
    public TimeSpan BackoffRemaining => Remaining(Interlocked.Read(ref _backoffUntilTicks));

    /// <summary>Whether the vault failed (5xx, timeout) recently enough to be avoided while others are available.</summary>
    public bool RecentlyFailed => Remaining(Interlocked.Read(ref _unhealthyUntilTicks)) > TimeSpan.Zero;

    /// <summary>Waits for a permit within <paramref name="cancellationToken"/> (the request's budget); null when the queue is full.</summary>
    public async ValueTask<Permit?> AcquireAsync(CancellationToken cancellationToken)
    {
        Waiter waiter;
        lock (_lock)
        {
            if (_queue.Count == 0 && _used < Limit)
            {
                return Take();
            }

            _queuedThisWindow = true; // the allowance binds: demand to grow it by
            if (_waiting >= QueueLimit)
            {
                return null;
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
            _segmentNumber++;
            _used -= _segments[_segment];
            _segments[_segment] = 0;
            if (++_segmentsThisWindow == SegmentsPerWindow)
            {
                EndOfWindow();
            }

            // Queued requests are released at most the allowance's share of a segment at a time (the fraction carried,
            // nothing saved up across an idle segment): paced, not in one burst when old permits return, so what this
            // instance sends is spread over the window as the vault's other clients see it, and its 429s too.
            if (_releaseScheduled)
            {
                // The last segment's release has not run yet (a clock that jumps runs timers late): it runs now, before
                // this segment's credit is added, so no segment's share is lost to the cap below.
                _releaseScheduled = false;
                Release();
            }

            _releaseCredit = Math.Min(_releaseCredit, 1) + (_allowance / SegmentsPerWindow);
            ReleaseOrSchedule();

            // Every permit is back and nobody waits: all segments are empty (a window has ended since the last permit was
            // taken, so the window's flags are reset too), and the window can stand still until the next permit is taken.
            // The allowance does not change in idle windows. A permit taken then returns SegmentsPerWindow + 1 ticks
            // after the restart, still more than a window later. (A tick already dispatched when the timer stops can
            // advance the window one segment early once; the extra segment of the ring absorbs it.)
            if (_used == 0 && _waiting == 0 && _replenishing)
            {
                _replenishing = false;
                _replenish.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            }
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
    /// Releases the segment's queued requests now or, with a release jitter, after a random part of the segment (under
    /// the lock). Instances that started together tick together; released all at the segment's start, the same
    /// instances would reach the vault first in every segment, take what its window freed and leave the 429s to the
    /// others, whose allowances then shrink while the first ones' grow: additive increase, multiplicative decrease
    /// converges on equal shares only when throttling falls on the senders in proportion to what they send (Chiu and
    /// Jain, 1989), and a random phase is how senders avoid being synchronised (Floyd and Jacobson, "The
    /// Synchronization of Periodic Routing Messages", 1994; RFC 7567 §4.2.1 for the same effect in router queues).
    /// </summary>
    private void ReleaseOrSchedule()
    {
        if (_releaseJitterTicks <= 1 || _queue.Count == 0)
        {
            Release();
            return;
        }

        if (!_releaseScheduled)
        {
            _releaseScheduled = true;
            var delay = 1 + (long)(Random.Shared.NextDouble() * (_releaseJitterTicks - 1));
            _delayedRelease.Change(TimeSpan.FromTicks(delay), Timeout.InfiniteTimeSpan);
        }
    }

    private void DelayedRelease()
    {
        lock (_lock)
        {
            if (_releaseScheduled)
            {
                _releaseScheduled = false;
                Release();
            }
        }
    }

    /// <summary>Gives queued requests the permits this segment's pacing credit and the window allow (under the lock).</summary>
    private void Release()
    {
        while (_releaseCredit >= 1 && _used < Limit && _queue.TryDequeue(out var waiter))
        {
            if (waiter.TrySetResult(new Permit(_segmentNumber, _segment)))
            {
                _waiting--;
                _releaseCredit--;
                Take();
            }
        }
    }

    /// <summary>Additive increase (under the lock): a window whose queued demand was signed without a 429 grows the allowance.</summary>
    private void EndOfWindow()
    {
        // Only a window that used (nearly) all of the allowance grows it: an instance held back by something else (its
        // clients' demand, backoff windows) would otherwise grow an allowance it does not use and then burst into it.
        // The limiter admits at most Limit × 20 / 21 per window (permits return one segment late).
        if (_succeededThisWindow && _queuedThisWindow && !_throttledThisWindow && _takenThisWindow >= Limit * 0.9)
        {
            _allowance = Math.Min(PermitsPerWindow, _allowance + (PermitsPerWindow * IncreaseShare));
        }

        _segmentsThisWindow = 0;
        _takenThisWindow = 0;
        _succeededThisWindow = false;
        _queuedThisWindow = _queue.Count > 0;
        _throttledThisWindow = false;
    }

    private Permit Take()
    {
        _used++;
        _segments[_segment]++;
        _takenThisWindow++;
        if (!_replenishing)
        {
            _replenishing = true;
            _replenish.Change(_segmentLength, _segmentLength);
        }

        return new Permit(_segmentNumber, _segment);
    }

    /// <summary>
    /// A permit that no sign call spent (its request ran out of budget waiting for a backoff window, or moved to
    /// another vault): the vault never counted it, so it passes to the first waiter, or back to the window while the
    /// segment it counts in is still in it. Otherwise a 429 would cost an instance its share of the vault twice: once
    /// for the backoff window, again for the permits its waiting requests held through it.
    /// </summary>
    public void Return(Permit permit)
    {
        lock (_lock)
        {
            if (_segmentNumber - permit.Segment >= _segments.Length)
            {
                return; // its segment has left the window: nothing is held any more
            }

            while (_queue.TryDequeue(out var waiter))
            {
                if (waiter.TrySetResult(permit))
                {
                    _waiting--;
                    return;
                }
            }

            _segments[permit.Slot]--;
            _used--;
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
            _throttledThisWindow = true;
            var now = _time.GetUtcNow().UtcTicks;
            if (now < _backoffUntilTicks)
            {
                return TimeSpan.FromTicks(_backoffUntilTicks - now);
            }

            // Multiplicative decrease at most once per window, from the rate this instance was sending when that was
            // below its allowance: what it sent in the last window is what the vault counted when it said 429, so a
            // second cut within the window would answer the same congestion twice (RFC 5681 §3.1 and RFC 6582 §3.2
            // cut once per round trip, which the window is here: a sign is counted against the vault for a window).
            if (now - _lastDecreaseTicks >= Window.Ticks)
            {
                _allowance = Math.Max(_floor, Math.Min(_allowance, _used) * DecreaseFactor);
                _lastDecreaseTicks = now;
            }

            var delay = retryAfter is { } after && after > TimeSpan.Zero ? after : Backoff[Math.Min(_throttledWindows, Backoff.Length - 1)];
            _throttledWindows++;
            Interlocked.Exchange(ref _backoffUntilTicks, now + delay.Ticks);
            return delay;
        }
    }

    public void OnSuccess()
    {
        _succeededThisWindow = true;
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
        _delayedRelease.Dispose();
        lock (_lock)
        {
            while (_queue.TryDequeue(out var waiter))
            {
                waiter.TrySetException(new DependencyUnavailableException("keyvault", "The signing service is shutting down."));
            }
        }
    }
}
