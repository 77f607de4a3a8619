using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;
using TokenService.Configuration;
using TokenService.Http;
using TokenService.Protocol;
using TokenService.Tokens;

namespace TokenService.Endpoints;

/// <summary>
/// Authentication of the session endpoints with our own access tokens: RFC 6750 bearer tokens, and DPoP-bound tokens
/// with the <c>DPoP</c> scheme and a proof (RFC 9449 §7). Only tokens issued for the token service itself are accepted
/// (their <c>aud</c> contains our issuer): a token issued for an API must not let that API list or end the user's
/// sessions (RFC 9068 §4 and RFC 8725 §3.9, audience checks; RFC 9700 §2.3, audience-restricted tokens; docs/api.md, "Routes at a glance").
/// </summary>
public sealed class BearerAuthentication(AccessTokenVerifier verifier, IOptions<TokenServiceOptions> options, DpopRequestReader dpop)
{
    private const string BearerChallenge = "Bearer realm=\"token-service\"";

    private readonly string _audience = options.Value.IssuerOrThrow;

    /// <summary>Returns the active token's status, or null after writing a 401 with <c>WWW-Authenticate</c>.</summary>
    public async Task<AccessTokenStatus?> AuthenticateAsync(HttpContext context)
    {
        var header = context.Request.Headers.Authorization;
        string? token = null;
        var isDpop = false;
        if (header.Count == 1 && header[0] is { } value)
        {
            if (value.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
            {
                token = value["Bearer ".Length..].Trim();
            }
            else if (value.StartsWith("DPoP ", StringComparison.OrdinalIgnoreCase))
            {
                token = value["DPoP ".Length..].Trim();
                isDpop = true;
            }
        }

        if (string.IsNullOrEmpty(token))
        {
            // RFC 9449 §7.2 (Figure 17): both schemes offered, without error information.
            context.Response.Headers.WWWAuthenticate = new StringValues([BearerChallenge, dpop.Challenge()]);
            await ProblemResponses.WriteAsync(context, StatusCodes.Status401Unauthorized, "Unauthorized", "A bearer or DPoP access token is required.");
            return null;
        }

        var status = await verifier.ValidateActiveAsync(token, context.RequestAborted);
        if (!status.Active)
        {
            // RFC 6750 §3.1: invalid_token for expired, revoked, malformed or otherwise invalid tokens.
            await InvalidTokenAsync(context, isDpop, "The access token is not active.", "The access token is not active.");
            return null;
        }

        if (!status.Payload!.Audiences.Contains(_audience, StringComparer.Ordinal))
        {
            // RFC 6750 §3.1: a token for another audience is "invalid for other reasons". The problem detail says how
            // to get the right one: an access token requested with audience=<issuer> (RFC 8693 §2.1).
            await InvalidTokenAsync(context, isDpop, "The access token is not for this service.", $"The access token is not for this service: request one with audience={_audience}.");
            return null;
        }

        var jkt = status.ConfirmationJkt;
        if (!isDpop)
        {
            if (jkt is not null)
            {
                // RFC 9449 §7.2: a DPoP-bound token presented as a bearer token is refused (no downgrade).
                context.Response.Headers.WWWAuthenticate = new StringValues(
                    [$"{BearerChallenge}, error=\"{OAuthErrors.InvalidToken}\", error_description=\"The access token is DPoP-bound\"", dpop.Challenge()]);
                await ProblemResponses.WriteAsync(context, StatusCodes.Status401Unauthorized, "Unauthorized",
                    "The access token is DPoP-bound: send it with the DPoP scheme and a DPoP proof.");
                return null;
            }

            return status;
        }

        if (jkt is null)
        {
            await InvalidTokenAsync(context, isDpop: true, "The access token is not DPoP-bound", "The access token is not DPoP-bound: send it as a Bearer token.");
            return null;
        }

        // RFC 9449 §7.1: a proof checked per §4.3, with ath of this token, signed by the key the token is bound to.
        var proof = await dpop.ValidateAsync(context, token);
        dpop.OfferNonce(context.Response);
        if (!proof.IsValid)
        {
            context.Response.Headers.WWWAuthenticate = dpop.Challenge(proof.ErrorCode, proof.IsAbsent ? "A DPoP proof is required" : "The DPoP proof is invalid");
            await ProblemResponses.WriteAsync(context, StatusCodes.Status401Unauthorized, "Unauthorized", proof.Description ?? "The DPoP proof is invalid.");
            return null;
        }

        if (!string.Equals(proof.Thumbprint, jkt, StringComparison.Ordinal))
        {
            // RFC 9449 §7.1 Figure 16.
            await InvalidTokenAsync(context, isDpop: true, "Invalid DPoP key binding", "The DPoP proof is not signed with the key the access token is bound to.");
            return null;
        }

        return status;
    }

    private Task InvalidTokenAsync(HttpContext context, bool isDpop, string description, string detail)
    {
        // error_description allows only a restricted character set (RFC 6750 §3): fixed texts only, never configuration.
        context.Response.Headers.WWWAuthenticate = isDpop
            ? dpop.Challenge(OAuthErrors.InvalidToken, description)
            : $"{BearerChallenge}, error=\"{OAuthErrors.InvalidToken}\", error_description=\"{description}\"";
        return ProblemResponses.WriteAsync(context, StatusCodes.Status401Unauthorized, "Unauthorized", detail);
    }
}
