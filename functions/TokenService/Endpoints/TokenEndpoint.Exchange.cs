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
        if (!await replayCache.TryAddAsync(idToken.ReplayKey, idToken.ExpiresAt, context.RequestAborted))
        {
            LogIdTokenReplayed(logger, client.ClientId);
            metrics.IdTokenRejected(client.ClientId, "Replayed");
            return TokenGrantResult.Refused(OAuthErrors.InvalidRequest, "The subject_token has already been exchanged.");
        }

        SessionRecord session;
        string refreshToken;
        Tokens.IssuedAccessToken accessToken;
        try
        {
            var payload = idToken.Payload;
            (session, refreshToken, accessToken) = await sessions.OpenAsync(
                new OpenSessionRequest(
                    idToken.UserId, payload.Subject!, client.ClientId, request.Scope, request.Audiences,
                    payload.AuthTime is { } authTime ? DateTimeOffset.FromUnixTimeSeconds(authTime) : null,
                    payload.Acr, payload.Amr, DpopRequestReader.ProofKey(context),
                    // What the user will recognise the session by on the sessions page; the header itself is not kept.
                    UserAgentLabel.Describe(context.Request.Headers.UserAgent.ToString())),
                (opened, grantedScope, ct) => accessTokens.IssueAsync(
                    opened with { Audiences = AudiencePolicy.ForToken(opened.Audiences, _issuer) }, grantedScope, ct, opened.DpopJkt),
                context.RequestAborted);
        }
        catch (Exception ex) when (ex is DependencyUnavailableException or OperationCanceledException)
        {
            // Nothing was opened: let the same ID token be tried again (best effort; the store may be down).
            await ForgetReplayMarkerAsync(idToken.ReplayKey);
            throw;
        }

        metrics.Issued(client.ClientId);
        return TokenGrantResult.Issued(new IssuedTokens(client, accessToken, refreshToken, session, Exchange: true));
    }

    private async Task ForgetReplayMarkerAsync(string replayKey)
    {
        try
        {
            await replayCache.RemoveAsync(replayKey, CancellationToken.None);
        }
        catch (DependencyUnavailableException)
        {
            // The marker stays; the user signs in at the IdP again.
        }
    }
}
