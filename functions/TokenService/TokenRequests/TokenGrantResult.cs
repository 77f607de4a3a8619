using System.Diagnostics.CodeAnalysis;
using TokenService.Clients;
using TokenService.Protocol;
using TokenService.Sessions;
using TokenService.Tokens;

namespace TokenService.TokenRequests;

/// <summary>The tokens a grant issued, for the token response (RFC 6749 §5.1).</summary>
/// <param name="Client">The client the tokens were issued to.</param>
/// <param name="AccessToken">The signed access token.</param>
/// <param name="RefreshToken">The session's new refresh token.</param>
/// <param name="Session">The session, as committed.</param>
/// <param name="Exchange">An RFC 8693 exchange: the response names the <c>issued_token_type</c> (§2.2.1).</param>
public sealed record IssuedTokens(RegisteredClient Client, IssuedAccessToken AccessToken, string RefreshToken, SessionRecord Session, bool Exchange);

/// <summary>What a grant did: the tokens it issued, or the OAuth error to answer with.</summary>
public sealed class TokenGrantResult
{
    private TokenGrantResult(IssuedTokens? tokens, OAuthError? error, bool clearRefreshCookie)
    {
        Tokens = tokens;
        Error = error;
        ClearRefreshCookie = clearRefreshCookie;
    }

    public IssuedTokens? Tokens { get; }

    public OAuthError? Error { get; }

    /// <summary>With an error: the spa's refresh cookie is dead (its session ended or its token is invalid), so it is cleared.</summary>
    public bool ClearRefreshCookie { get; }

    [MemberNotNullWhen(false, nameof(Tokens))]
    [MemberNotNullWhen(true, nameof(Error))]
    public bool IsError => Error is not null;

    public static TokenGrantResult Issued(IssuedTokens tokens) => new(tokens, null, false);

    public static TokenGrantResult Refused(string error, string description, bool clearRefreshCookie = false) =>
        new(null, new OAuthError(error, description), clearRefreshCookie);
}
