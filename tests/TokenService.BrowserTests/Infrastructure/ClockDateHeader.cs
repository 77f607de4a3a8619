namespace TokenService.BrowserTests.Infrastructure;

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
