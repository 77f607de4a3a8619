using TokenService.Azure.KeyVault;
using TokenService.Azure.KeyVault.Keys;
using TokenService.Azure.KeyVault.Keys.Cryptography;
using TokenService.Jwt;

namespace TokenService.Tests.KeyVault;

/// <summary>The calls client tests repeat, written once on the SDK-shaped <see cref="KeyClient"/>.</summary>
internal static class KeyClientTestExtensions
{
    /// <summary>A key version as the signing service creates them: RSA-HSM 2048 or EC-HSM P-256, sign and verify, with <paramref name="tags"/>.</summary>
    public static async Task<KeyVaultKey> CreateTestKeyAsync(this KeyClient client, string name, KeyType keyType, IDictionary<string, string>? tags = null)
    {
        T Tagged<T>(T options)
            where T : CreateKeyOptions
        {
            options.Enabled = true;
            options.KeyOperations.Add(KeyOperation.Sign);
            options.KeyOperations.Add(KeyOperation.Verify);
            foreach (var (tag, value) in tags ?? new Dictionary<string, string>())
            {
                options.Tags[tag] = value;
            }

            return options;
        }

        return keyType == KeyType.RsaHsm
            ? await client.CreateRsaKeyAsync(Tagged(new CreateRsaKeyOptions(name, hardwareProtected: true) { KeySize = 2048 }))
            : await client.CreateEcKeyAsync(Tagged(new CreateEcKeyOptions(name, hardwareProtected: true) { CurveName = KeyCurveName.P256 }));
    }

    /// <summary>Every version of a key, all pages read.</summary>
    public static async Task<List<KeyProperties>> ListVersionsAsync(this KeyClient client, string name, CancellationToken cancellationToken = default)
    {
        var versions = new List<KeyProperties>();
        await foreach (var version in client.GetPropertiesOfKeyVersionsAsync(name, cancellationToken))
        {
            versions.Add(version);
        }

        return versions;
    }

    /// <summary>The signature of <paramref name="digest"/> by <paramref name="key"/>'s version.</summary>
    public static async Task<byte[]> SignAsync(this KeyClient client, KeyVaultKey key, string algorithm, byte[] digest) =>
        (await client.GetCryptographyClient(key.Name, key.Properties.Version).SignAsync(new SignatureAlgorithm(algorithm), digest)).Signature;

    /// <summary>Disables a key version; its tags stay.</summary>
    public static async Task<KeyVaultKey> DisableAsync(this KeyClient client, Uri keyId) =>
        await client.UpdateKeyPropertiesAsync(new KeyProperties(keyId) { Enabled = false });

    /// <summary>The public key as the signing service publishes it.</summary>
    public static PublicJsonWebKey PublicJwk(this KeyVaultKey key) => KeyVaultJwk.ToPublicJwk(key.Key) ?? throw new InvalidOperationException("No public key.");

    /// <summary>A version's key id URL, as the signing service's provider key ids spell it.</summary>
    public static string Kid(this KeyProperties properties) => properties.Id!.AbsoluteUri;
}
