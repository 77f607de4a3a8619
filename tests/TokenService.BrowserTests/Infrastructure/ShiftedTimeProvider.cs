namespace TokenService.BrowserTests.Infrastructure;

/// <summary>
/// The servers' clock: real time plus an offset the tests move forward, so that an access token expires at the
/// token service and the API without waiting (the browser's own timers are moved by Playwright's clock).
/// Timers run on real time.
/// </summary>
public sealed class ShiftedTimeProvider : TimeProvider
{
    private long _offsetTicks;

    public override DateTimeOffset GetUtcNow() => System.GetUtcNow().AddTicks(Interlocked.Read(ref _offsetTicks));

    public void Advance(TimeSpan by) => Interlocked.Add(ref _offsetTicks, by.Ticks);
}
