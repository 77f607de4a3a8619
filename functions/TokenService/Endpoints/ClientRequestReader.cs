using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Primitives;
using TokenService.Clients;
using TokenService.Http;
using TokenService.Protocol;

namespace TokenService.Endpoints;

/// <summary>
/// Common front of the browser-facing OAuth endpoints: method, CORS, form parsing and client
/// authentication, with spa clients bound to their allowed origins, and the request limits of the route
/// (<see cref="RequestRateLimiter"/>) before anything reaches a store.
/// </summary>
public sealed class ClientRequestReader(ClientAuthenticator authenticator, CorsPolicy cors, RequestRateLimiter limiter)
{
    public readonly record struct ClientRequest(IReadOnlyDictionary<string, StringValues> Form, RegisteredClient Client);

    /// <summary>
    /// Answers CORS preflights (when <paramref name="browserFacing"/>) and wrong methods, then reads the form and
    /// authenticates the client. Returns the request, or null after writing the response. A request of an authenticated
    /// confidential, resource-server or admin client is charged to that client; every other one (spa requests, failed
    /// authentication, unreadable forms) to its source address, so a server-side client's volume from one egress
    /// address is not mistaken for an attack from that address, and a made-up client id buys no budget of its own.
    /// </summary>
    public async Task<ClientRequest?> ReadAsync(HttpContext context, string endpointName, RateLimitedRoute route, bool browserFacing)
    {
        if (browserFacing && HttpMethods.IsOptions(context.Request.Method))
        {
            await cors.PreflightAsync(context, "POST");
            return null;
        }

        if (!HttpMethods.IsPost(context.Request.Method))
        {
            context.Response.Headers.Allow = "POST";
            await OAuthResponses.WriteErrorAsync(context, StatusCodes.Status405MethodNotAllowed, OAuthErrors.InvalidRequest, $"The {endpointName} endpoint accepts POST only.");
            return null;
        }

        var origin = browserFacing ? cors.Apply(context) : null;
        var parsed = await FormRequest.ReadAsync(context.Request, context.RequestAborted);
        if (parsed.Form is null)
        {
            if (!limiter.TryAcquireForAddress(route, context, out var wait))
            {
                await RateLimitResponses.WriteAsync(context, oauthErrors: true, wait);
                return null;
            }

            await OAuthResponses.WriteErrorAsync(context, parsed.Status, OAuthErrors.InvalidRequest, parsed.Error!);
            return null;
        }

        var auth = authenticator.Authenticate(context.Request, parsed.Form);
        var charged = auth.Client is { IsPublic: false } server
            ? limiter.TryAcquireForClient(route, server, out var retryAfter)
            : limiter.TryAcquireForAddress(route, context, out retryAfter);
        if (!charged || auth.BackedOff)
        {
            await RateLimitResponses.WriteAsync(context, oauthErrors: true, charged ? auth.RetryAfter!.Value : retryAfter);
            return null;
        }

        if (!auth.Succeeded)
        {
            var status = auth.Error == OAuthErrors.InvalidClient ? StatusCodes.Status401Unauthorized : StatusCodes.Status400BadRequest;
            // RFC 6749 §5.2: a 401 for invalid_client carries WWW-Authenticate matching the scheme the client used.
            await OAuthResponses.WriteErrorAsync(context, status, auth.Error!, auth.Description!,
                status == StatusCodes.Status401Unauthorized ? "Basic realm=\"token-service\", charset=\"UTF-8\"" : null);
            return null;
        }

        var client = auth.Client!;
        if (client.Type == ClientType.Spa)
        {
            // A spa's requests come from a browser page of an allowed origin; anything else is refused
            // (this also stops cross-site use of the refresh cookie, together with SameSite=Strict).
            var requestOrigin = context.Request.Headers.Origin.ToString();
            if (origin is null || !client.AllowedOrigins.Contains(ConfigurationClientStore.NormalizeOrigin(requestOrigin)))
            {
                await OAuthResponses.WriteErrorAsync(context, StatusCodes.Status401Unauthorized, OAuthErrors.InvalidClient, "This client's requests must come from one of its allowed origins.");
                return null;
            }
        }

        return new ClientRequest(parsed.Form, client);
    }
}
