using Microsoft.AspNetCore.Http;
using TokenService.Http;
using TokenService.Tokens;

namespace TokenService.Endpoints;

/// <summary>RFC 6750 bearer authentication of the session endpoints with our own access tokens.</summary>
public sealed class BearerAuthentication(AccessTokenVerifier verifier)
{
    /// <summary>Returns the active token's status, or null after writing a 401 with <c>WWW-Authenticate</c>.</summary>
    public async Task<AccessTokenStatus?> AuthenticateAsync(HttpContext context)
    {
        var header = context.Request.Headers.Authorization;
        string? token = null;
        if (header.Count == 1 && header[0] is { } value && value.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            token = value["Bearer ".Length..].Trim();
        }

        if (string.IsNullOrEmpty(token))
        {
            context.Response.Headers.WWWAuthenticate = "Bearer realm=\"token-service\"";
            await ProblemResponses.WriteAsync(context, StatusCodes.Status401Unauthorized, "Unauthorized", "A bearer access token is required.");
            return null;
        }

        var status = await verifier.ValidateActiveAsync(token, context.RequestAborted);
        if (!status.Active)
        {
            // RFC 6750 §3.1: invalid_token for expired, revoked, malformed or otherwise invalid tokens.
            context.Response.Headers.WWWAuthenticate = "Bearer realm=\"token-service\", error=\"invalid_token\", error_description=\"The access token is not active.\"";
            await ProblemResponses.WriteAsync(context, StatusCodes.Status401Unauthorized, "Unauthorized", "The access token is not active.");
            return null;
        }

        return status;
    }
}
