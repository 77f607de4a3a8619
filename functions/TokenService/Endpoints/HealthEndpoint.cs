using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TokenService.Configuration;
using TokenService.Events;
using TokenService.Http;
using TokenService.Keys;
using TokenService.Sessions;

namespace TokenService.Endpoints;

/// <summary>
/// <c>GET /healthz</c>: liveness plus store and signing-key reachability (503 with Retry-After when either fails).
/// Each probe has its own short budget (<c>TokenService:HealthProbeBudget</c>, default 2 s) so a hanging dependency
/// never holds a platform health probe, and the result is cached for <see cref="CacheFor"/> so that frequent
/// probes from many load balancers cost one store read and one key read. <c>graphSubscription</c> ("ok" or
/// "attention") reports recent Microsoft Graph lifecycle notifications (<see cref="GraphSubscriptionHealth"/>); it
/// never makes the service unhealthy. A dependency that becomes unavailable is logged once with the exception type
/// that made it so, and once when it is available again: once per change, not per probe, so that a platform probing
/// every few seconds does not flood the log while the cause of a 503 is still there to read. A signing key problem
/// that no retry fixes (a vault refusing the app's identity: a missing role or access policy,
/// <see cref="SigningKeyHealth"/>) fails the keys check as <c>"misconfigured"</c>, with one line per problem in
/// <c>problems</c>, saying what to grant where; it is read from what the provider remembers, so a health probe never
/// calls the vault again for it. The store check is the store's own <see cref="IStoreHealthCheck"/> when it has one
/// (Table Storage: do the tables exist), else a session read.
/// </summary>
public sealed partial class HealthEndpoint(
    ISessionStore store, IEnumerable<IStoreHealthCheck> storeChecks, ISigningKeyService keys, IOptions<TokenServiceOptions> options, TimeProvider time, GraphSubscriptionHealth graphSubscription, SigningKeyHealth keyHealth, ILogger<HealthEndpoint> logger)
{
    public static readonly TimeSpan CacheFor = TimeSpan.FromSeconds(5);

    private const string ProbeSessionId = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

    private readonly IStoreHealthCheck[] _storeChecks = [.. storeChecks];
    private readonly SemaphoreSlim _probing = new(1, 1);
    private (bool StoreOk, bool KeysOk, DateTimeOffset At)? _last;

    public Task HandleAsync(HttpContext context) => EndpointInvoker.InvokeAsync(context, oauthErrors: false, async ctx =>
    {
        if (!HttpMethods.IsGet(ctx.Request.Method) && !HttpMethods.IsHead(ctx.Request.Method))
        {
            await ProblemResponses.MethodNotAllowedAsync(ctx, "GET, HEAD");
            return;
        }

        var (storeOk, keysOk) = await CheckAsync(ctx.RequestAborted);
        var problems = keyHealth.Problems;
        var healthy = storeOk && keysOk && problems.Count == 0;
        ctx.Response.Headers.CacheControl = "no-store";
        if (!healthy)
        {
            ctx.Response.Headers.RetryAfter = "5";
        }

        await OAuthResponses.WriteJsonAsync(ctx, healthy ? 200 : 503, writer =>
        {
            writer.WriteString("status", healthy ? "healthy" : "unhealthy");
            writer.WriteStartObject("checks");
            writer.WriteString("store", storeOk ? "ok" : "unavailable");
            writer.WriteString("keys", problems.Count > 0 ? "misconfigured" : keysOk ? "ok" : "unavailable");
            writer.WriteEndObject();
            writer.WriteString("graphSubscription", graphSubscription.Status);
            if (problems.Count > 0)
            {
                writer.WriteStartArray("problems");
                foreach (var problem in problems)
                {
                    writer.WriteStringValue(problem);
                }

                writer.WriteEndArray();
            }
        });
    });

    private async Task<(bool StoreOk, bool KeysOk)> CheckAsync(CancellationToken cancellationToken)
    {
        if (Fresh() is { } cached)
        {
            return cached;
        }

        await _probing.WaitAsync(cancellationToken);
        try
        {
            if (Fresh() is { } again)
            {
                return again;
            }

            var budget = options.Value.HealthProbeBudget;
            var storeFailure = await Probe(ProbeStoreAsync, budget, cancellationToken);
            var keysFailure = await Probe(async ct => (await keys.GetKeySetAsync(ct)).Active ?? throw new DependencyUnavailableException("keys", "no active key"), budget, cancellationToken);
            var (storeOk, keysOk) = (storeFailure is null, keysFailure is null);
            LogChange("store", _last?.StoreOk ?? true, storeFailure);
            LogChange("keys", _last?.KeysOk ?? true, keysFailure);
            _last = (storeOk, keysOk, time.GetUtcNow());
            return (storeOk, keysOk);
        }
        finally
        {
            _probing.Release();
        }
    }

    private (bool, bool)? Fresh() =>
        _last is { } last && time.GetUtcNow() - last.At < CacheFor ? (last.StoreOk, last.KeysOk) : null;

    private async Task<object?> ProbeStoreAsync(CancellationToken cancellationToken)
    {
        if (_storeChecks.Length == 0)
        {
            return await store.GetSessionAsync(ProbeSessionId, cancellationToken);
        }

        foreach (var check in _storeChecks)
        {
            await check.CheckAsync(cancellationToken);
        }

        return null;
    }

    /// <summary>Logs a dependency's change of state; nothing while it stays as it was (the first state is "ok").</summary>
    private void LogChange(string dependency, bool wasOk, string? failure)
    {
        if (wasOk && failure is not null)
        {
            LogUnavailable(logger, dependency, failure);
        }
        else if (!wasOk && failure is null)
        {
            LogAvailableAgain(logger, dependency);
        }
    }

    /// <summary>Null when the probe succeeded, else what made it fail: the exception type, or the budget's timeout.</summary>
    private async Task<string?> Probe(Func<CancellationToken, Task<object?>> probe, TimeSpan budget, CancellationToken requestAborted)
    {
        using var timeout = new CancellationTokenSource(budget, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(requestAborted, timeout.Token);
        try
        {
            await probe(linked.Token);
            return null;
        }
        catch (DependencyUnavailableException ex)
        {
            // The adapters wrap the fault they met (e.g. Azure.RequestFailedException): name that one.
            return (ex.InnerException ?? ex).GetType().FullName;
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !requestAborted.IsCancellationRequested)
        {
            return $"no answer within TokenService:HealthProbeBudget ({budget})";
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // An adapter fault that is not classified as an outage (e.g. no usable Azure credential) is still an
            // unreachable dependency for a health probe: report it, never 500 (README: 503 with Retry-After).
            return ex.GetType().FullName;
        }
    }

    [LoggerMessage(EventId = 1301, Level = LogLevel.Warning, Message = "Health: {Dependency} is unavailable ({Cause}); /healthz answers 503 until it recovers.")]
    private static partial void LogUnavailable(ILogger logger, string dependency, string cause);

    [LoggerMessage(EventId = 1302, Level = LogLevel.Information, Message = "Health: {Dependency} is available again.")]
    private static partial void LogAvailableAgain(ILogger logger, string dependency);
}
