using TokenService.Azure.KeyVault.Keys;

namespace TokenService.Azure.KeyVault;

/// <summary>Makes the <see cref="KeyClient"/> of each configured vault; tests register their own to reach in-test vaults.</summary>
public sealed class KeyVaultClientFactory(Func<Uri, KeyClient> create)
{
    public KeyClient Create(Uri vaultUri) => create(vaultUri);
}
