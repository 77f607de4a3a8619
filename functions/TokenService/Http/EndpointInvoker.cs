using System.Globalization;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TokenService.Configuration;
using TokenService.Protocol;

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
        // One total budget for the request's dependency calls, retries included: endpoints pass RequestAborted to
        // every store, Key Vault and JWKS call, so replacing it with a token that also fires at the budget ends a
        // hanging dependency within seconds instead of holding the client (and the host's thread) for 40 s.
        // One source for both (the budget's timer, and a registration that cancels it when the client goes away) rather
        // than a budget source linked with the client's token into a third: the handlers below tell the two apart by the
        // client's own token.
        var clientAborted = context.RequestAborted;
        var services = context.RequestServices;
        using var budget = new CancellationTokenSource(
            services.GetRequiredService<IOptions<TokenServiceOptions>>().Value.DependencyBudget, services.GetRequiredService<TimeProvider>());
        using var clientGone = clientAborted.UnsafeRegister(static source => ((CancellationTokenSource)source!).Cancel(), budget);
        context.RequestAborted = budget.Token;
        try
        {
            await handler(context);
        }
        catch (OperationCanceledException) when (budget.IsCancellationRequested && !clientAborted.IsCancellationRequested && !context.Response.HasStarted)
        {
            context.RequestAborted = clientAborted; // the answer itself is not bound by the spent budget
            await WriteUnavailableAsync(context, oauthErrors, new DependencyUnavailableException("dependency", "the request's dependency budget ran out"));
        }
        catch (DependencyUnavailableException ex)
        {
            if (context.Response.HasStarted)
            {
                LogDependencyUnavailable(Logger(context), ex.Dependency, WithoutFinalPeriod(ex.Message));
                return;
            }

            context.RequestAborted = clientAborted;
            await WriteUnavailableAsync(context, oauthErrors, ex);
        }
        catch (OperationCanceledException) when (clientAborted.IsCancellationRequested)
        {
            // The client disconnected; nothing to answer.
        }
        catch (Exception ex) when (ex is BadHttpRequestException or IOException && !context.Response.HasStarted)
        {
            context.RequestAborted = clientAborted;
            ResetResponse(context);
            if (oauthErrors)
            {
                await OAuthResponses.WriteErrorAsync(context, StatusCodes.Status400BadRequest, OAuthErrors.InvalidRequest, "The request could not be read.");
            }
            else
            {
                await ProblemResponses.WriteAsync(context, StatusCodes.Status400BadRequest, "Bad Request", "The request could not be read.");
            }
        }
        catch (Exception ex) when (!context.Response.HasStarted)
        {
            // Last resort, so that both hosts answer the same shape: the standalone host's exception handler and the
            // Functions worker would each answer an escaped exception their own way. Crafted input is refused by the
            // readers (JOSE, events) before it gets here; reaching this is a bug. The log line names the exception type
            // and where it was thrown, never its message, the path (user and session ids) or the request's content, which
            // may carry tokens.
            LogUnhandled(Logger(context), ex.GetType().FullName ?? "Exception", ex.TargetSite is { } site ? site.DeclaringType?.FullName + "." + site.Name : "unknown",
                context.Request.Method);
            context.RequestAborted = clientAborted;
            ResetResponse(context);
            if (oauthErrors)
            {
                // RFC 6749 §4.1.2.1 server_error, in the §5.2 JSON error shape of the token endpoints.
                await OAuthResponses.WriteErrorAsync(context, StatusCodes.Status500InternalServerError, OAuthErrors.ServerError, "The request failed; it has been logged.");
            }
            else
            {
                await ProblemResponses.WriteAsync(context, StatusCodes.Status500InternalServerError, "Internal Server Error", "The request failed; it has been logged.");
            }
        }
    }

    private static async Task WriteUnavailableAsync(HttpContext context, bool oauthErrors, DependencyUnavailableException ex)
    {
        LogDependencyUnavailable(Logger(context), ex.Dependency, WithoutFinalPeriod(ex.Message));
        // Optional: the fail-closed answer must never depend on a metric being registered (a host composed without the
        // core's metrics still answers 503, not 500).
        context.RequestServices.GetService<Diagnostics.TokenServiceMetrics>()?.Unavailable(ex.Dependency);
        ResetResponse(context);
        var retryAfter = ex.RetryAfter is { } delay && delay > TimeSpan.Zero ? Math.Ceiling(delay.TotalSeconds) : 5;
        context.Response.Headers.RetryAfter = retryAfter.ToString(CultureInfo.InvariantCulture);
        if (oauthErrors)
        {
            await OAuthResponses.WriteErrorAsync(context, StatusCodes.Status503ServiceUnavailable, OAuthErrors.TemporarilyUnavailable, "The service is temporarily unavailable; retry later.");
        }
        else
        {
            await ProblemResponses.WriteAsync(context, StatusCodes.Status503ServiceUnavailable, "Service Unavailable", "A dependency is temporarily unavailable; retry later.");
        }
    }

    private static void ResetResponse(HttpContext context)
    {
        context.Response.Clear();
    }

    // The line adds its own period after the reason; exception messages are sentences that often end with one.
    private static string WithoutFinalPeriod(string reason) => reason.TrimEnd().TrimEnd('.');

    private static ILogger Logger(HttpContext context) =>
        context.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger("TokenService.Http");

    [LoggerMessage(EventId = 1002, Level = LogLevel.Error, Message = "Unhandled {ExceptionType} at {Site} answering a {Method} request; answered 500.")]
    private static partial void LogUnhandled(ILogger logger, string exceptionType, string site, string method);

    [LoggerMessage(EventId = 1001, Level = LogLevel.Warning, Message = "Dependency {Dependency} unavailable: {Reason}. Answered 503.")]
    private static partial void LogDependencyUnavailable(ILogger logger, string dependency, string reason);
}
