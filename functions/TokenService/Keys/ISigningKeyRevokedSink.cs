namespace TokenService.Keys;

/// <summary>
/// Told when an operator's revocation removed a signing key from the JWKS (<see cref="ISigningKeyService.RevokeAsync"/>
/// answered <see cref="KeyRotationResult.Changed"/>), after the removal: every token that key signed is refused from
/// now on, so every validator should drop the key and refetch the JWKS now rather than at its next scheduled refetch.
/// Optional; implementations must return at once (no I/O) and must not throw.
/// </summary>
public interface ISigningKeyRevokedSink
{
    /// <param name="kid">The revoked key's <c>kid</c> (its RFC 7638 thumbprint, as the JWKS and the tokens name it).</param>
    void SigningKeyRevoked(string kid);
}
