namespace TokenService.Keys;

/// <summary>
/// Port for our signing keys. Implementations: the local development provider (embedded default) and
/// Key Vault. JWKS and validation read <see cref="GetKeySetAsync"/>, which serves a cached snapshot (no
/// I/O on a warm cache); issuing a token costs exactly one <see cref="SignAsync"/> (one Key Vault call).
/// </summary>
public interface ISigningKeyService
{
    /// <summary>The published keys and the active one, from cache; loads on first use.</summary>
    ValueTask<SigningKeySet> GetKeySetAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Signs a JWS signing input (RFC 7515 §5.1) with <paramref name="key"/>'s private key and returns the
    /// signature in JWS form (ES256: R‖S). Unreachable or throttling provider → <see cref="DependencyUnavailableException"/>;
    /// never falls back to another key.
    /// </summary>
    ValueTask<byte[]> SignAsync(SigningKey key, ReadOnlyMemory<byte> signingInput, CancellationToken cancellationToken);

    /// <summary>
    /// Signs with a key the provider chooses: the active key, or with several vaults the active key of the least-loaded
    /// healthy vault, failing over to another vault (another key, another kid) on throttling, 5xx or a timeout within
    /// the request's budget. <paramref name="buildSigningInput"/> builds the JWS signing input (RFC 7515 §5.1) for the
    /// chosen key, whose kid goes into the protected header; it may be called again for another key after a failover.
    /// The result names the key and the signing input that was signed. Nothing can be signed within the budget →
    /// <see cref="DependencyUnavailableException"/> (or the budget's cancellation). No default body: a decorator that
    /// left it to one would sign with the active key and bypass the provider's choice; a provider with one key calls
    /// <see cref="ActiveKeySigning.SignAsync"/>.
    /// </summary>
    ValueTask<SignedInput> SignWithActiveKeyAsync(Func<SigningKey, ReadOnlyMemory<byte>> buildSigningInput, CancellationToken cancellationToken);

    /// <summary>
    /// The lifecycle check (docs/api.md, "Keys and the JWKS"): creates the first key, publishes the next one ahead of use,
    /// activates, retires and removes keys on schedule. Idempotent; safe when instances run it at once.
    /// </summary>
    Task<KeyRotationResult> RunRotationCheckAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Compromise response: creates the next key now, published ahead of use like a scheduled rotation (activating
    /// after the propagation time), or signing at once when <paramref name="immediate"/>. Without
    /// <paramref name="immediate"/>, an existing pending key is kept (nothing new is created). A rotation that would
    /// publish more than <c>Keys:MaxPublishedKeys</c> keys creates nothing and throws <see cref="KeyLimitReachedException"/>.
    /// </summary>
    Task<KeyRotationResult> RotateNowAsync(bool immediate, CancellationToken cancellationToken);

    /// <summary>
    /// Compromise response: the key with <paramref name="kid"/> leaves the JWKS at once and verifies nothing more;
    /// when it was the signing key, a new key signs from now on. Removal is permanent, so the scheduled rotation
    /// never brings it back. Revoking a kid that is not published changes nothing (<see cref="KeyRotationResult.Changed"/> false).
    /// </summary>
    Task<KeyRotationResult> RevokeAsync(string kid, CancellationToken cancellationToken);
}

/// <summary><see cref="ISigningKeyService.SignWithActiveKeyAsync"/> for a provider with one signing key: the active one.</summary>
public static class ActiveKeySigning
{
    public static async ValueTask<SignedInput> SignAsync(ISigningKeyService keys, Func<SigningKey, ReadOnlyMemory<byte>> buildSigningInput, CancellationToken cancellationToken)
    {
        var key = (await keys.GetKeySetAsync(cancellationToken)).Active ?? throw new DependencyUnavailableException("keys", "No active signing key.");
        var signingInput = buildSigningInput(key);
        return new SignedInput(key, signingInput, await keys.SignAsync(key, signingInput, cancellationToken));
    }
}

/// <summary>
/// An operator's rotation refused because it would publish more than <c>Keys:MaxPublishedKeys</c> keys. Nothing was
/// created. Revoking a retired key frees a place at once; otherwise one frees when the next retired key leaves the
/// JWKS (<see cref="NextRemoval"/>).
/// </summary>
public sealed class KeyLimitReachedException(int published, int limit, DateTimeOffset? nextRemoval, IReadOnlyList<string> retiredKids)
    : InvalidOperationException($"Rotating now would publish {published} keys; Keys:MaxPublishedKeys is {limit}.")
{
    public int Published { get; } = published;

    public int Limit { get; } = limit;

    /// <summary>When the next retired key leaves the JWKS, when one does.</summary>
    public DateTimeOffset? NextRemoval { get; } = nextRemoval;

    /// <summary>Retired keys an operator may revoke to make room (their tokens are then refused).</summary>
    public IReadOnlyList<string> RetiredKids { get; } = retiredKids;
}

/// <summary>What one rotation check did.</summary>
public sealed record KeyRotationResult(bool Changed, string Summary);

/// <summary>A signature, the key that made it and the signing input it covers.</summary>
public readonly record struct SignedInput(SigningKey Key, ReadOnlyMemory<byte> SigningInput, byte[] Signature);
