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

/// <summary>
/// The token service's <c>Date</c> header on the servers' clock, as a real server's agrees with its own time: the SPA
/// aligns the iat of its DPoP proofs with it. Kestrel would write the machine's time.
/// </summary>
public sealed class ClockDateHeader(TimeProvider time) : Microsoft.AspNetCore.Hosting.IStartupFilter
{
    public Action<Microsoft.AspNetCore.Builder.IApplicationBuilder> Configure(Action<Microsoft.AspNetCore.Builder.IApplicationBuilder> next) => app =>
    {
        Microsoft.AspNetCore.Builder.UseExtensions.Use(app, async (context, proceed) =>
        {
            context.Response.OnStarting(() =>
            {
                context.Response.Headers.Date = time.GetUtcNow().ToString("R", System.Globalization.CultureInfo.InvariantCulture);
                return Task.CompletedTask;
            });
            await proceed(context);
        });
        next(app);
    };
}
