using Microsoft.AspNetCore.Http;
using TokenService.Clients;
using TokenService.Endpoints;
using TokenService.Http;
using TokenService.Protocol;

namespace TokenService.TokenRequests;

/// <summary>
/// The token endpoint's answers: the RFC 6749 §5.1 token response (a spa's refresh token only in its cookie) and
/// §5.2 errors, 400 with the error code, both <c>Cache-Control: no-store</c> (<see cref="OAuthResponses"/>).
/// </summary>
public sealed class TokenResponseWriter(TimeProvider time)
{
    public static Task WriteErrorAsync(HttpContext context, OAuthError error) =>
        OAuthResponses.WriteErrorAsync(context, StatusCodes.Status400BadRequest, error.Code, error.Description);

    public Task WriteAsync(HttpContext context, TokenGrantResult result)
    {
        if (result.IsError)
        {
            if (result.ClearRefreshCookie)
            {
                RefreshTokenCookie.Clear(context.Response);
            }

            return WriteErrorAsync(context, result.Error.Value);
        }

        return WriteTokensAsync(context, result.Tokens);
    }

    private Task WriteTokensAsync(HttpContext context, IssuedTokens issued)
    {
        var spa = issued.Client.Type == ClientType.Spa;
        if (spa)
        {
            RefreshTokenCookie.Set(context.Response, issued.RefreshToken, issued.Session.RefreshTokenExpiresAt - time.GetUtcNow());
        }

        // RFC 9449 §5: token_type DPoP tells the client the access token is bound to its key (cnf.jkt).
        var tokenType = DpopRequestReader.ProofKey(context) is null ? "Bearer" : "DPoP";
        return OAuthResponses.WriteJsonAsync(context, StatusCodes.Status200OK, (issued, tokenType, spa), static (writer, s) =>
        {
            writer.WriteString("access_token", s.issued.AccessToken.Token);
            writer.WriteString("token_type", s.tokenType);
            writer.WriteNumber("expires_in", s.issued.AccessToken.ExpiresIn);
            writer.WriteString("scope", s.issued.AccessToken.Scope);
            if (!s.spa)
            {
                writer.WriteString("refresh_token", s.issued.RefreshToken);
            }

            if (s.issued.Exchange)
            {
                writer.WriteString("issued_token_type", TokenTypes.AccessToken);
            }
        });
    }
}
