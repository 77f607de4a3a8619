namespace TokenService.Azure.KeyVault.Keys;

/// <summary>
/// Stands in for <c>Azure.Security.KeyVault.Keys.KeyVaultKey</c>: a key version as create, get and update return it,
/// its public <see cref="Key"/> and its <see cref="Properties"/> (id, attributes, tags).
/// </summary>
public sealed class KeyVaultKey
{
    internal KeyVaultKey(JsonWebKey key, KeyProperties properties)
    {
        Key = key;
        Properties = properties;
    }

    /// <summary>The key version's id URL (<see cref="KeyProperties.Id"/>).</summary>
    public Uri Id => Properties.Id!;

    public string Name => Properties.Name;

    public KeyType KeyType => Key.KeyType;

    public JsonWebKey Key { get; }

    public KeyProperties Properties { get; }
}
