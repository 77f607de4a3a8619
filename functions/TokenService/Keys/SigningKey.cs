using Microsoft.IdentityModel.Tokens;
using TokenService.Jwt;

namespace TokenService.Keys;

/// <summary>Key lifecycle states (docs/api.md, "Keys and the JWKS"). Removed keys are simply absent.</summary>
public enum SigningKeyState
{
    /// <summary>Published in the JWKS, not yet signing, so that caches learn it first.</summary>
    Pending,

    /// <summary>The one key that signs.</summary>
    Active,

    /// <summary>Published for verification only, until every token it signed has expired.</summary>
    Retired,
}

/// <summary>
/// A published signing key: public material and lifecycle metadata only. The private key stays with
/// its provider (Key Vault HSM, or the local development key file).
/// </summary>
public sealed class SigningKey
{
    public SigningKey(string providerKeyId, string algorithm, PublicJsonWebKey publicJwk, SigningKeyState state, DateTimeOffset createdAt)
    {
        ProviderKeyId = providerKeyId;
        Algorithm = algorithm;
        Kid = publicJwk.ComputeThumbprint();
        PublicJwk = publicJwk.WithKid(Kid);
        State = state;
        CreatedAt = createdAt;
        // The JWK as Microsoft.IdentityModel verifies with it, bound to this key's one algorithm (RFC 8725 §3.1).
        var securityKey = PublicJwk.Alg == algorithm ? PublicJwk.ToSecurityKey() : new PublicJsonWebKey
        {
            Kty = PublicJwk.Kty, Kid = Kid, Use = "sig", Alg = algorithm, N = PublicJwk.N, E = PublicJwk.E, Crv = PublicJwk.Crv, X = PublicJwk.X, Y = PublicJwk.Y,
        }.ToSecurityKey();
        if (securityKey is null || !JwsAlgorithms.KeyAllows(securityKey, algorithm))
        {
            throw new ArgumentException("The public key cannot verify its algorithm.", nameof(publicJwk));
        }

        SecurityKey = securityKey;
        VerificationKeys = [securityKey];
    }

    /// <summary>Whether <paramref name="signature"/> (JWS form) over <paramref name="signingInput"/> verifies with this key's algorithm.</summary>
    public bool VerifySignature(byte[] signingInput, byte[] signature)
    {
        var factory = SecurityKey.CryptoProviderFactory;
        var provider = factory.CreateForVerifying(SecurityKey, Algorithm);
        try
        {
            return provider.Verify(signingInput, signature);
        }
        finally
        {
            factory.ReleaseSignatureProvider(provider);
        }
    }

    /// <summary>RFC 7638 thumbprint of the public key: the <c>kid</c> of tokens it signs.</summary>
    public string Kid { get; }

    /// <summary>The provider's own id (Key Vault key version URL, local key id).</summary>
    public string ProviderKeyId { get; }

    public string Algorithm { get; }
    public PublicJsonWebKey PublicJwk { get; }
    public SigningKeyState State { get; }
    public DateTimeOffset CreatedAt { get; }
    public DateTimeOffset? ActivatesAt { get; init; }
    public DateTimeOffset? RetiresAt { get; init; }
    public DateTimeOffset? RemoveAt { get; init; }
    /// <summary>The public key for Microsoft.IdentityModel (verification, and the <c>kid</c> of the JWS header it writes).</summary>
    public SecurityKey SecurityKey { get; }

    /// <summary><see cref="SecurityKey"/> as a one-element array, handed to IdentityModel's key resolver without allocating.</summary>
    internal SecurityKey[] VerificationKeys { get; }
}

/// <summary>A consistent snapshot of the published keys and the one that signs.</summary>
public sealed class SigningKeySet
{
    private readonly Dictionary<string, SigningKey> _byKid;

    public SigningKeySet(IReadOnlyList<SigningKey> published, DateTimeOffset loadedAt)
    {
        Published = published;
        LoadedAt = loadedAt;
        _byKid = new Dictionary<string, SigningKey>(StringComparer.Ordinal);
        foreach (var key in published)
        {
            _byKid[key.Kid] = key;
        }

        Active = published.FirstOrDefault(k => k.State == SigningKeyState.Active);
    }

    public static SigningKeySet Empty { get; } = new([], DateTimeOffset.MinValue);

    public IReadOnlyList<SigningKey> Published { get; }
    public SigningKey? Active { get; }
    public DateTimeOffset LoadedAt { get; }

    public SigningKey? Find(string kid) => _byKid.GetValueOrDefault(kid);
}
