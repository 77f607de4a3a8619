using Microsoft.AspNetCore.Http;
using TokenService.Diagnostics;
using TokenService.Protocol;
using TokenService.Sessions;
using TokenService.TokenRequests;

namespace TokenService.Endpoints;

/// <summary>The token endpoint's RFC 8693 exchange: redeem the IdP's ID token once, open a session, issue its tokens.</summary>
public sealed partial class TokenEndpoint
{
    private async Task<TokenGrantResult> ExchangeAsync(HttpContext context, ValidatedExchangeRequest request)
    {
        var client = request.Client;

        // The ID token must have been issued to this client's application at the IdP (Clients:N:IdpAudience).
        var validation = await idTokens.ValidateAsync(request.SubjectToken, client.IdpAudience, context.RequestAborted);
        if (!validation.IsValid)
        {
            if (validation.Error == Jwt.JwtValidationError.KeysUnavailable)
            {
                throw new DependencyUnavailableException("idp", "The IdP's keys cannot be fetched.");
            }

            LogIdTokenRejected(logger, client.ClientId, validation.Error.ToString());
            metrics.IdTokenRejected(client.ClientId, validation.Error.ToString());
            // RFC 8693 §2.2.2: an invalid subject token is invalid_request.
            return TokenGrantResult.Refused(OAuthErrors.InvalidRequest, "The subject_token is not a valid ID token: " + validation.Description);
        }

        var idToken = validation.Token!;
        var payload = idToken.Payload;
        var opened = await sessions.TryOpenAsync(
            new OpenSessionRequest(
                idToken.UserId, payload.Subject!, client.ClientId, request.Scope, request.Audiences,
                payload.AuthTime is { } authTime ? DateTimeOffset.FromUnixTimeSeconds(authTime) : null,
                payload.Acr, payload.Amr, DpopRequestReader.ProofKey(context),
                // What the user will recognise the session by on the sessions page; the header itself is not kept.
                UserAgentLabel.Describe(context.Request.Headers.UserAgent.ToString()),
                // Redeemed in the commit that opens the session: once, and only if the session opens.
                new IdTokenRedemption(idToken.ReplayKey, idToken.ExpiresAt)),
            (opened, grantedScope, ct) => accessTokens.IssueAsync(
                opened with { Audiences = AudiencePolicy.ForToken(opened.Audiences, _issuer) }, grantedScope, ct, opened.DpopJkt),
            context.RequestAborted);
        if (opened is not { } tokens)
        {
            LogIdTokenReplayed(logger, client.ClientId);
            metrics.IdTokenRejected(client.ClientId, "Replayed");
            return TokenGrantResult.Refused(OAuthErrors.InvalidRequest, "The subject_token has already been exchanged.");
        }

        var (session, refreshToken, accessToken) = tokens;
        metrics.Issued(client.ClientId);
        return TokenGrantResult.Issued(new IssuedTokens(client, accessToken, refreshToken, session, Exchange: true));
    }
}
