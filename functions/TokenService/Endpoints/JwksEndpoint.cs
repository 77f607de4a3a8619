using System.Globalization;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;
using TokenService.Configuration;
using TokenService.Http;
using TokenService.Keys;

namespace TokenService.Endpoints;

/// <summary>
/// <c>GET /.well-known/jwks.json</c> (RFC 7517): pending, active and retired public keys, <c>kid</c> =
/// RFC 7638 thumbprint, public members only. Cacheable for half the key propagation time, so every cache
/// has seen a new key before it signs. Served from the cached key set: no Key Vault call per request.
/// </summary>
public sealed class JwksEndpoint(ISigningKeyService keys, IOptions<KeysOptions> options)
{
    public Task HandleAsync(HttpContext context) => EndpointInvoker.InvokeAsync(context, oauthErrors: false, HandleCoreAsync);

    private async Task HandleCoreAsync(HttpContext context)
    {
        if (!HttpMethods.IsGet(context.Request.Method) && !HttpMethods.IsHead(context.Request.Method))
        {
            await ProblemResponses.MethodNotAllowedAsync(context, "GET, HEAD");
            return;
        }

        var set = await keys.GetKeySetAsync(context.RequestAborted);
        var maxAge = (long)options.Value.JwksMaxAge.TotalSeconds;
        await OAuthResponses.WriteJsonAsync(context, 200, writer =>
        {
            writer.WriteStartArray("keys");
            foreach (var key in set.Published)
            {
                key.PublicJwk.WriteTo(writer);
            }

            writer.WriteEndArray();
        }, "application/jwk-set+json; charset=utf-8", "public, max-age=" + maxAge.ToString(CultureInfo.InvariantCulture));
    }
}
