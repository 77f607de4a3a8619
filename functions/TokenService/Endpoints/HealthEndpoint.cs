using Microsoft.AspNetCore.Http;
using TokenService.Http;
using TokenService.Keys;
using TokenService.Sessions;

namespace TokenService.Endpoints;

/// <summary><c>GET /healthz</c>: liveness plus store and signing-key reachability (503 when either fails).</summary>
public sealed class HealthEndpoint(ISessionStore store, ISigningKeyService keys)
{
    private const string ProbeSessionId = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

    public Task HandleAsync(HttpContext context) => EndpointInvoker.InvokeAsync(context, oauthErrors: false, async ctx =>
    {
        if (!HttpMethods.IsGet(ctx.Request.Method) && !HttpMethods.IsHead(ctx.Request.Method))
        {
            await ProblemResponses.MethodNotAllowedAsync(ctx, "GET");
            return;
        }

        var storeOk = await Probe(async () => await store.GetSessionAsync(ProbeSessionId, ctx.RequestAborted));
        var keysOk = await Probe(async () => (await keys.GetKeySetAsync(ctx.RequestAborted)).Active ?? throw new DependencyUnavailableException("keys", "no active key"));
        var healthy = storeOk && keysOk;
        await OAuthResponses.WriteJsonAsync(ctx, healthy ? 200 : 503, writer =>
        {
            writer.WriteString("status", healthy ? "healthy" : "unhealthy");
            writer.WriteStartObject("checks");
            writer.WriteString("store", storeOk ? "ok" : "unavailable");
            writer.WriteString("keys", keysOk ? "ok" : "unavailable");
            writer.WriteEndObject();
        });
    });

    private static async Task<bool> Probe(Func<Task<object?>> probe)
    {
        try
        {
            await probe();
            return true;
        }
        catch (DependencyUnavailableException)
        {
            return false;
        }
    }
}
