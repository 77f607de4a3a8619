using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;
using TokenService.Configuration;
using TokenService.Http;
using TokenService.Tokens;

namespace TokenService.Endpoints;

/// <summary>
/// RFC 6750 bearer authentication of the session endpoints with our own access tokens. Only tokens issued for
/// the token service itself are accepted (their <c>aud</c> contains our issuer): a token issued for an API
/// must not let that API list or end the user's sessions (RFC 9068 §4 and RFC 8725 §3.9, audience checks;
/// RFC 9700 §2.3, audience-restricted tokens; CONTRACT §2).
/// </summary>
public sealed class BearerAuthentication(AccessTokenVerifier verifier, IOptions<TokenServiceOptions> options)
{
    private readonly string _audience = options.Value.IssuerOrThrow;

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
            await InvalidTokenAsync(context, "The access token is not active.", "The access token is not active.");
            return null;
        }

        if (!status.Payload!.Audiences.Contains(_audience, StringComparer.Ordinal))
        {
            // RFC 6750 §3.1: a token for another audience is "invalid for other reasons". The problem detail says how
            // to get the right one: an access token requested with audience=<issuer> (RFC 8693 §2.1).
            await InvalidTokenAsync(context, "The access token is not for this service.", $"The access token is not for this service: request one with audience={_audience}.");
            return null;
        }

        return status;
    }

    private static Task InvalidTokenAsync(HttpContext context, string description, string detail)
    {
        // error_description allows only a restricted character set (RFC 6750 §3): fixed texts only, never configuration.
        context.Response.Headers.WWWAuthenticate = $"Bearer realm=\"token-service\", error=\"invalid_token\", error_description=\"{description}\"";
        return ProblemResponses.WriteAsync(context, StatusCodes.Status401Unauthorized, "Unauthorized", detail);
    }
}
