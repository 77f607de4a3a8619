using System.Globalization;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace TokenService.Http;

/// <summary>
/// Runs an endpoint so that faults fail closed: an unavailable dependency answers 503 with Retry-After
/// (OAuth JSON <c>temporarily_unavailable</c> on OAuth routes, problem details elsewhere); a client that
/// went away gets nothing; anything unexpected is logged and answered without internals.
/// </summary>
public static partial class EndpointInvoker
{
    public static async Task InvokeAsync(HttpContext context, bool oauthErrors, Func<HttpContext, Task> handler)
    {
        try
        {
            await handler(context);
        }
        catch (DependencyUnavailableException ex)
        {
            LogDependencyUnavailable(Logger(context), ex.Dependency, ex.Message);
            if (context.Response.HasStarted)
            {
                return;
            }

            ResetResponse(context);
            var retryAfter = ex.RetryAfter is { } delay && delay > TimeSpan.Zero ? Math.Ceiling(delay.TotalSeconds) : 5;
            context.Response.Headers.RetryAfter = retryAfter.ToString(CultureInfo.InvariantCulture);
            if (oauthErrors)
            {
                await OAuthResponses.WriteErrorAsync(context, StatusCodes.Status503ServiceUnavailable, "temporarily_unavailable", "The service is temporarily unavailable; retry later.");
            }
            else
            {
                await ProblemResponses.WriteAsync(context, StatusCodes.Status503ServiceUnavailable, "Service Unavailable", "A dependency is temporarily unavailable; retry later.");
            }
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client disconnected; nothing to answer.
        }
        catch (Exception ex) when (ex is BadHttpRequestException or IOException && !context.Response.HasStarted)
        {
            ResetResponse(context);
            if (oauthErrors)
            {
                await OAuthResponses.WriteErrorAsync(context, StatusCodes.Status400BadRequest, "invalid_request", "The request could not be read.");
            }
            else
            {
                await ProblemResponses.WriteAsync(context, StatusCodes.Status400BadRequest, "Bad Request", "The request could not be read.");
            }
        }
    }

    private static void ResetResponse(HttpContext context)
    {
        context.Response.Clear();
    }

    private static ILogger Logger(HttpContext context) =>
        context.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger("TokenService.Http");

    [LoggerMessage(EventId = 1001, Level = LogLevel.Warning, Message = "Dependency {Dependency} unavailable: {Reason}. Answered 503.")]
    private static partial void LogDependencyUnavailable(ILogger logger, string dependency, string reason);
}
