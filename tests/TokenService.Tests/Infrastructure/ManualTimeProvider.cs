namespace TokenService.Tests.Infrastructure;

/// <summary>A clock tests move by hand. Timers still run on real time (the hosted services' intervals are not under test here).</summary>
public sealed class ManualTimeProvider(DateTimeOffset start) : TimeProvider
{
    private long _ticks = start.UtcTicks;
    private bool _followsSystemClock;

    public ManualTimeProvider()
        : this(DateTimeOffset.UtcNow)
    {
    }

    /// <summary>
    /// The system clock plus whatever <see cref="Advance"/> added: for tests against a host in another process, which
    /// runs on the system clock, so that what the test makes "now" (a DPoP proof's iat) is now for the host too.
    /// </summary>
    public static ManualTimeProvider FollowingSystemClock() => new(new DateTimeOffset(0, TimeSpan.Zero)) { _followsSystemClock = true };

    public override DateTimeOffset GetUtcNow() => new((_followsSystemClock ? DateTimeOffset.UtcNow.UtcTicks : 0) + Interlocked.Read(ref _ticks), TimeSpan.Zero);

    public void Advance(TimeSpan by) => Interlocked.Add(ref _ticks, by.Ticks);
}
