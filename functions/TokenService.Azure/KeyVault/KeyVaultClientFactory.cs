namespace TokenService.Azure.KeyVault;

/// <summary>Makes the client of each configured vault; tests register their own to reach in-test vaults.</summary>
public sealed class KeyVaultClientFactory(Func<Uri, KeyVaultKeysClient> create)
{
    public KeyVaultKeysClient Create(Uri vaultUri) => create(vaultUri);
}
