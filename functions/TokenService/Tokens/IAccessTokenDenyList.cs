namespace TokenService.Tokens;

/// <summary>
/// Revoked access tokens by <c>jti</c> (RFC 7009 §2: an access token is revoked by denying it until it
/// expires). Entries may be deleted after <c>expiresAt</c>. Unreachable store → <see cref="DependencyUnavailableException"/>.
/// </summary>
public interface IAccessTokenDenyList
{
    /// <summary>Idempotent: denying a token twice is not an error.</summary>
    ValueTask DenyAsync(string jti, DateTimeOffset expiresAt, CancellationToken cancellationToken);

    ValueTask<bool> IsDeniedAsync(string jti, CancellationToken cancellationToken);
}
