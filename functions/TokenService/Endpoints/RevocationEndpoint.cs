using Microsoft.AspNetCore.Http;
using TokenService.Clients;
using TokenService.Diagnostics;
using TokenService.Http;
using TokenService.Protocol;
using TokenService.Sessions;
using TokenService.Tokens;

namespace TokenService.Endpoints;

/// <summary>
/// <c>POST /oauth2/revoke</c> (RFC 7009). A refresh token ends its session; an access token's jti is
/// denied until it expires (and, with the Shared Signals transmitter on, its receivers are told). Unknown tokens, tokens of other clients and wrong hints all answer 200
/// (§2.2: the client cannot tell, and learns nothing about other clients' tokens).
/// </summary>
public sealed class RevocationEndpoint(
    ClientRequestReader reader,
    SessionService sessions,
    AccessTokenVerifier accessTokens,
    IAccessTokenDenyList denyList,
    IAuditSink audit,
    TokenServiceMetrics metrics,
    IAccessTokenRevokedSink? revokedSink = null)
{
    public Task HandleAsync(HttpContext context) => EndpointInvoker.InvokeAsync(context, oauthErrors: true, HandleCoreAsync);

    private async Task HandleCoreAsync(HttpContext context)
    {
        if (await reader.ReadAsync(context, "revocation", RateLimitedRoute.Revocation, browserFacing: true) is not { } request)
        {
            return;
        }

        await TokenServiceDiagnostics.TraceAsync(TokenServiceDiagnostics.Spans.Revoke, context, request.Client.ClientId, (this, context, request), static s => s.Item1.RevokeAsync(s.context, s.request));
    }

    private async Task RevokeAsync(HttpContext context, ClientRequestReader.ClientRequest request)
    {

        var client = request.Client;
        if (client.Type is not (ClientType.Spa or ClientType.Confidential))
        {
            await OAuthResponses.WriteErrorAsync(context, 400, OAuthErrors.UnauthorizedClient, "This client may not revoke tokens.");
            return;
        }

        var token = FormRequest.Get(request.Form, "token");
        if (token is null && client.Type == ClientType.Spa)
        {
            // Logout from a browser app: the refresh token is the cookie.
            token = RefreshTokenCookie.Read(context.Request);
        }

        if (token is null)
        {
            await OAuthResponses.WriteErrorAsync(context, 400, OAuthErrors.InvalidRequest, "token is required.");
            return;
        }

        // token_type_hint only orders the lookups (RFC 7009 §2.1); a wrong hint still finds the token.
        var hint = FormRequest.Get(request.Form, "token_type_hint");
        if (hint == "access_token")
        {
            _ = await TryRevokeAccessTokenAsync(token, client, context.RequestAborted) || await TryRevokeRefreshTokenAsync(token, client, context.RequestAborted);
        }
        else
        {
            _ = await TryRevokeRefreshTokenAsync(token, client, context.RequestAborted) || await TryRevokeAccessTokenAsync(token, client, context.RequestAborted);
        }

        if (client.Type == ClientType.Spa)
        {
            RefreshTokenCookie.Clear(context.Response);
        }

        OAuthResponses.NoStore(context.Response);
        context.Response.StatusCode = StatusCodes.Status200OK;
        context.Response.ContentLength = 0;
    }

    private async Task<bool> TryRevokeRefreshTokenAsync(string token, RegisteredClient client, CancellationToken cancellationToken)
    {
        if (RefreshTokens.TryGetSessionId(token) is null)
        {
            return false;
        }

        var session = await sessions.FindByRefreshTokenAsync(token, cancellationToken);
        if (session is null || session.ClientId != client.ClientId)
        {
            return false;
        }

        await sessions.RevokeSessionAsync(session.SessionId, SessionEndReason.ClientRevocation, cancellationToken);
        metrics.Revoked(client.ClientId, "refresh_token");
        return true;
    }

    private async Task<bool> TryRevokeAccessTokenAsync(string token, RegisteredClient client, CancellationToken cancellationToken)
    {
        if (token.Length > 8192 || token.Count(c => c == '.') != 2)
        {
            return false;
        }

        var result = await accessTokens.ValidateSignatureAsync(token, allowExpired: true, cancellationToken);
        if (!result.IsValid || result.Payload!.ClientId != client.ClientId || result.Payload.JwtId is not { } jti || result.Payload.ExpiresAt is not { } exp)
        {
            return false;
        }

        var expiresAt = DateTimeOffset.FromUnixTimeSeconds(exp);
        await denyList.DenyAsync(jti, expiresAt, cancellationToken);

        // Told once the jti is denied, never before (the Shared Signals transmitter: receivers of the token's audiences
        // refuse it at once instead of at their next introspection).
        revokedSink?.AccessTokenRevoked(jti, result.Payload.Audiences, expiresAt);
        metrics.Revoked(client.ClientId, "access_token");
        audit.Record(new AuditEvent(AuditEventKind.AccessTokenRevoked, AuditEvent.ClientActor(client.ClientId), "denied", null, result.Payload.SessionId, client.ClientId, "jti " + jti));
        return true;
    }
}
