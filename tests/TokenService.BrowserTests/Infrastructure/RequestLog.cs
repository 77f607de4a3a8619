using System.Collections.Concurrent;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;

namespace TokenService.BrowserTests.Infrastructure;

/// <summary>One request as the token service saw it.</summary>
public sealed record LoggedRequest(string Method, string Path, string? Origin, bool RefreshCookie, int Status, string? AllowOrigin);

/// <summary>
/// What reached the token service, recorded before its own pipeline: the browser hides from Playwright the
/// Origin and Cookie headers of a request that CORS refuses, so the server is the witness.
/// </summary>
public sealed class RequestLog : IStartupFilter
{
    private readonly ConcurrentQueue<LoggedRequest> _requests = new();

    public IReadOnlyList<LoggedRequest> Requests => [.. _requests];

    /// <summary>
    /// The first <paramref name="count"/> requests after the first <paramref name="skip"/> that match. Waits a little
    /// for them: a request is logged once its answer is written, which the browser may have read a moment earlier.
    /// </summary>
    public async Task<IReadOnlyList<LoggedRequest>> WaitForAsync(int skip, Func<LoggedRequest, bool> match, int count)
    {
        for (var attempt = 0; ; attempt++)
        {
            var found = Requests.Skip(skip).Where(match).ToList();
            if (found.Count >= count || attempt == 100)
            {
                return found;
            }

            await Task.Delay(50);
        }
    }

    public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
    {
        app.Use(async (context, proceed) =>
        {
            var origin = context.Request.Headers.Origin.ToString();
            var cookie = context.Request.Cookies.ContainsKey("__Host-refresh_token");
            await proceed(context);
            var allow = context.Response.Headers.AccessControlAllowOrigin.ToString();
            _requests.Enqueue(new LoggedRequest(
                context.Request.Method, context.Request.Path.Value ?? string.Empty, origin.Length > 0 ? origin : null, cookie,
                context.Response.StatusCode, allow.Length > 0 ? allow : null));
        });
        next(app);
    };
}
