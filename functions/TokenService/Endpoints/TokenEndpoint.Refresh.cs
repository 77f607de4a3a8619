using Microsoft.AspNetCore.Http;
using TokenService.Clients;
using TokenService.Diagnostics;
using TokenService.Protocol;
using TokenService.Sessions;
using TokenService.TokenRequests;

namespace TokenService.Endpoints;

/// <summary>The token endpoint's RFC 6749 §6 refresh: rotate the refresh token and issue an access token of the session.</summary>
public sealed partial class TokenEndpoint
{
    private async Task<TokenGrantResult> RefreshAsync(HttpContext context, ValidatedRefreshRequest request)
    {
        var client = request.Client;
        var proofKey = DpopRequestReader.ProofKey(context);

        // RFC 8707 §2.2: a refresh may ask for a token for a subset of the session's audiences. The check runs on the
        // session the rotation would store and before anything is stored, so a refused target changes nothing.
        var outcome = await sessions.RefreshAsync(
            request.RefreshToken, client.ClientId, request.Scope, proofKey,
            (rotated, grantedScope, ct) => accessTokens.IssueAsync(
                rotated with { Audiences = AudiencePolicy.ForRefresh(rotated.Audiences, request.RequestedAudiences, _issuer).Audiences }, grantedScope, ct, proofKey),
            rotated => AudiencePolicy.ForRefresh(rotated.Audiences, request.RequestedAudiences, _issuer).Error,
            context.RequestAborted);

        switch (outcome.Status)
        {
            case RefreshStatus.Success:
                metrics.Refreshed(client.ClientId);
                return TokenGrantResult.Issued(new IssuedTokens(client, outcome.AccessToken!.Value, outcome.RefreshToken!, outcome.Session!, Exchange: false));
            case RefreshStatus.InvalidTarget:
                return TokenGrantResult.Refused(OAuthErrors.InvalidTarget, outcome.Description);
            case RefreshStatus.InvalidScope:
                return TokenGrantResult.Refused(OAuthErrors.InvalidScope, outcome.Description);
            case RefreshStatus.ProofKeyMismatch:
                // RFC 9449 §5: the grant (the key-bound refresh token) is not usable without its key. The cookie stays:
                // the session is untouched, and the page that holds the key can still refresh.
                return TokenGrantResult.Refused(OAuthErrors.InvalidGrant, outcome.Description);
            default:
                // RFC 6749 §5.2 invalid_grant: the token is invalid, expired or reused, or its session ended; a spa's
                // cookie is of no more use.
                return TokenGrantResult.Refused(OAuthErrors.InvalidGrant, outcome.Description, clearRefreshCookie: client.Type == ClientType.Spa);
        }
    }
}
