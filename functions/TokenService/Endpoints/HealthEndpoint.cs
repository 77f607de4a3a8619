using Microsoft.AspNetCore.Http;
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
/// never makes the service unhealthy. The store check is the store's own <see cref="IStoreHealthCheck"/> when it has
/// one (Table Storage: do the tables exist), else a session read.
/// </summary>
public sealed class HealthEndpoint(
    ISessionStore store, IEnumerable<IStoreHealthCheck> storeChecks, ISigningKeyService keys, IOptions<TokenServiceOptions> options, TimeProvider time, GraphSubscriptionHealth graphSubscription)
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
            await ProblemResponses.MethodNotAllowedAsync(ctx, "GET");
            return;
        }

        var (storeOk, keysOk) = await CheckAsync(ctx.RequestAborted);
        var healthy = storeOk && keysOk;
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
            writer.WriteString("keys", keysOk ? "ok" : "unavailable");
            writer.WriteEndObject();
            writer.WriteString("graphSubscription", graphSubscription.Status);
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
            var storeOk = await Probe(ProbeStoreAsync, budget, cancellationToken);
            var keysOk = await Probe(async ct => (await keys.GetKeySetAsync(ct)).Active ?? throw new DependencyUnavailableException("keys", "no active key"), budget, cancellationToken);
            _last = (storeOk, keysOk, time.GetUtcNow());
            return (storeOk, keysOk);
        }
        finally
        {
            _probing.Release();
        }
    }

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

    private (bool, bool)? Fresh() =>
        _last is { } last && time.GetUtcNow() - last.At < CacheFor ? (last.StoreOk, last.KeysOk) : null;

    private async Task<bool> Probe(Func<CancellationToken, Task<object?>> probe, TimeSpan budget, CancellationToken requestAborted)
    {
        using var timeout = new CancellationTokenSource(budget, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(requestAborted, timeout.Token);
        try
        {
            await probe(linked.Token);
            return true;
        }
        catch (DependencyUnavailableException)
        {
            return false;
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !requestAborted.IsCancellationRequested)
        {
            return false;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // An adapter fault that is not classified as an outage (e.g. no usable Azure credential) is still an
            // unreachable dependency for a health probe: report it, never 500 (README: 503 with Retry-After).
            return false;
        }
    }
}
