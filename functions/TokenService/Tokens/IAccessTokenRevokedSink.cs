namespace TokenService.Tokens;

/// <summary>
/// Told of every access token a client revoked by its <c>jti</c> (RFC 7009 §2.1, <c>POST /oauth2/revoke</c>), after
/// the deny list accepted it (the revocation is in force before anyone hears of it). Optional: with none registered
/// nothing is done. Implementations must return at once (no I/O: queue the work) and must not throw, since the
/// revocation is done and the client must still get its answer.
/// </summary>
public interface IAccessTokenRevokedSink
{
    /// <param name="jti">The revoked token's <c>jti</c>, now on the deny list.</param>
    /// <param name="audiences">The token's <c>aud</c>: only receivers of one of them may hear of it.</param>
    /// <param name="expiresAt">The token's <c>exp</c>: past it the token is refused anyway.</param>
    void AccessTokenRevoked(string jti, IReadOnlyList<string> audiences, DateTimeOffset expiresAt);
}
