namespace TokenService.Tests.Infrastructure;

/// <summary>
/// The system clock plus whatever <see cref="Advance"/> added, timers on real time: the clock of a test against a host
/// in another process (the real Functions host tier), which runs on the system clock, so that what the test makes
/// "now" (a DPoP proof's <c>iat</c>) is now for the host too. Everything else runs on <c>FakeTimeProvider</c>.
/// </summary>
public sealed class SystemClockWithOffset : TimeProvider
{
    private long _offsetTicks;

    public override DateTimeOffset GetUtcNow() => System.GetUtcNow().AddTicks(Interlocked.Read(ref _offsetTicks));

    public void Advance(TimeSpan by) => Interlocked.Add(ref _offsetTicks, by.Ticks);
}
