using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Primitives;
using TokenService.Clients;
using TokenService.Http;

namespace TokenService.Endpoints;

/// <summary>
/// Common front of the browser-facing OAuth endpoints: method, CORS, form parsing and client
/// authentication, with spa clients bound to their allowed origins.
/// </summary>
public sealed class ClientRequestReader(ClientAuthenticator authenticator, CorsPolicy cors)
{
    public readonly record struct ClientRequest(IReadOnlyDictionary<string, StringValues> Form, RegisteredClient Client);

    /// <summary>
    /// Answers CORS preflights (when <paramref name="browserFacing"/>) and wrong methods, then reads the form and
    /// authenticates the client. Returns the request, or null after writing the response.
    /// </summary>
    public async Task<ClientRequest?> ReadAsync(HttpContext context, string endpointName, bool browserFacing)
    {
        if (browserFacing && HttpMethods.IsOptions(context.Request.Method))
        {
            await cors.PreflightAsync(context, "POST");
            return null;
        }

        if (!HttpMethods.IsPost(context.Request.Method))
        {
            context.Response.Headers.Allow = "POST";
            await OAuthResponses.WriteErrorAsync(context, StatusCodes.Status405MethodNotAllowed, "invalid_request", $"The {endpointName} endpoint accepts POST only.");
            return null;
        }

        var origin = browserFacing ? cors.Apply(context) : null;
        var parsed = await FormRequest.ReadAsync(context.Request, context.RequestAborted);
        if (parsed.Form is null)
        {
            await OAuthResponses.WriteErrorAsync(context, parsed.Status, "invalid_request", parsed.Error!);
            return null;
        }

        var auth = authenticator.Authenticate(context.Request, parsed.Form);
        if (!auth.Succeeded)
        {
            var status = auth.Error == "invalid_client" ? StatusCodes.Status401Unauthorized : StatusCodes.Status400BadRequest;
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
                await OAuthResponses.WriteErrorAsync(context, StatusCodes.Status401Unauthorized, "invalid_client", "This client's requests must come from one of its allowed origins.");
                return null;
            }
        }

        return new ClientRequest(parsed.Form, client);
    }
}
