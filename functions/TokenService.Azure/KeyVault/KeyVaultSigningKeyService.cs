using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TokenService.Configuration;
using TokenService.Keys;
using TokenService.Validation.Jose;

namespace TokenService.Azure.KeyVault;

/// <summary>
/// Signing keys in Key Vault (HSM-backed: <c>RSA-HSM</c> 2048 for RS256/PS256, <c>EC-HSM</c> P-256 for ES256).
/// The private key never leaves the vault: the service hashes the JWS signing input and asks Key Vault to sign
/// the digest (one call per issued token). Each version of <c>Keys:KeyName</c> carries its activation time in
/// the tag <c>activate-at</c> (Unix seconds), so every instance derives the same lifecycle; a removed key is
/// disabled (soft delete and purge protection keep it recoverable). Public keys are cached: JWKS and validation
/// make no Key Vault call.
/// </summary>
public sealed class KeyVaultSigningKeyService(KeyVaultKeysClient client, IOptions<KeysOptions> options, TimeProvider time, ILogger<KeyVaultSigningKeyService> logger)
    : LifecycleSigningKeyService(options.Value, time, logger)
{
    public const string ActivateAtTag = "activate-at";

    private readonly ConcurrentDictionary<string, StoredSigningKey> _publicKeys = new(StringComparer.Ordinal);

    /// <summary>Other instances' new keys are learnt well within the propagation time.</summary>
    protected override TimeSpan ReloadInterval
    {
        get
        {
            var quarter = TimeSpan.FromTicks(Options.PropagationTime.Ticks / 4);
            return quarter > TimeSpan.FromMinutes(5) ? TimeSpan.FromMinutes(5) : quarter < TimeSpan.FromSeconds(1) ? TimeSpan.FromSeconds(1) : quarter;
        }
    }

    private bool IsEc => !JwsAlgorithms.IsRsa(Options.Algorithm);

    protected override async Task<IReadOnlyList<StoredSigningKey>> LoadKeysAsync(CancellationToken cancellationToken)
    {
        var versions = await client.ListKeyVersionsAsync(Options.KeyName, cancellationToken);
        var keys = new List<StoredSigningKey>();
        foreach (var version in versions.Where(v => v.Enabled && v.Tags.ContainsKey(ActivateAtTag)))
        {
            if (!_publicKeys.TryGetValue(version.Kid, out var stored))
            {
                // Key material of a version never changes: fetched once per process.
                var bundle = await client.GetKeyAsync(Options.KeyName, version.Version, cancellationToken);
                if (bundle?.PublicJwk is null || (bundle.PublicJwk.Kty == "EC") != IsEc)
                {
                    continue;
                }

                stored = ToStored(bundle);
                _publicKeys[version.Kid] = stored;
            }

            keys.Add(stored);
        }

        return keys;
    }

    protected override async Task<StoredSigningKey> CreateKeyAsync(DateTimeOffset activatesAt, CancellationToken cancellationToken)
    {
        var tags = new Dictionary<string, string>
        {
            [ActivateAtTag] = activatesAt.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture),
            ["alg"] = Options.Algorithm,
            ["managed-by"] = "token-service",
        };
        var bundle = IsEc
            ? await client.CreateKeyAsync(Options.KeyName, "EC-HSM", null, "P-256", tags, cancellationToken)
            : await client.CreateKeyAsync(Options.KeyName, "RSA-HSM", 2048, null, tags, cancellationToken);
        var stored = ToStored(bundle);
        _publicKeys[bundle.Kid] = stored;
        return stored;
    }

    protected override async Task RemoveKeyAsync(KeyVersionInfo key, CancellationToken cancellationToken)
    {
        var version = key.ProviderKeyId[(key.ProviderKeyId.LastIndexOf('/') + 1)..];
        await client.UpdateKeyAsync(Options.KeyName, version, enabled: false, tags: null, cancellationToken);
        _publicKeys.TryRemove(key.ProviderKeyId, out _);
    }

    public override async ValueTask<byte[]> SignAsync(SigningKey key, ReadOnlyMemory<byte> signingInput, CancellationToken cancellationToken)
    {
        var digest = JwsAlgorithms.HashFor(key.Algorithm).Name switch
        {
            "SHA384" => SHA384.HashData(signingInput.Span),
            "SHA512" => SHA512.HashData(signingInput.Span),
            _ => SHA256.HashData(signingInput.Span),
        };

        // Key Vault returns ES256 signatures as R‖S (JOSE form) and RSA signatures as the raw octets.
        return await client.SignAsync(key.ProviderKeyId, key.Algorithm, digest, cancellationToken);
    }

    private StoredSigningKey ToStored(KeyVaultKey bundle)
    {
        var activatesAt = bundle.Tags.TryGetValue(ActivateAtTag, out var value) && long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds)
            ? DateTimeOffset.FromUnixTimeSeconds(seconds)
            : bundle.Created;
        var jwk = bundle.PublicJwk!;
        var withAlg = new JsonWebKey { Kty = jwk.Kty, N = jwk.N, E = jwk.E, Crv = jwk.Crv, X = jwk.X, Y = jwk.Y, Alg = Options.Algorithm, Use = "sig" };
        return new StoredSigningKey(new KeyVersionInfo(bundle.Kid, bundle.Created, activatesAt), Options.Algorithm, withAlg);
    }
}
