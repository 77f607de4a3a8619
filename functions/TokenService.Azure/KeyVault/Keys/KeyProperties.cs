namespace TokenService.Azure.KeyVault.Keys;

/// <summary>
/// Stands in for <c>Azure.Security.KeyVault.Keys.KeyProperties</c>: a key version's id, attributes and tags, as a list
/// of versions returns them and as <see cref="KeyClient.UpdateKeyPropertiesAsync"/> takes them. Only the members the
/// service uses.
/// </summary>
public sealed class KeyProperties
{
    private Dictionary<string, string>? _tags;

    /// <summary>Properties of the key <paramref name="name"/> (its latest version), to update.</summary>
    public KeyProperties(string name)
    {
        Name = name;
    }

    /// <summary>Properties of the key version <paramref name="id"/> names, to update.</summary>
    public KeyProperties(Uri id)
    {
        var identifier = new KeyVaultKeyIdentifier(id);
        Id = id;
        VaultUri = identifier.VaultUri;
        Name = identifier.Name;
        Version = identifier.Version;
    }

    /// <summary>The key version's id URL (<c>kid</c>); null on properties made from a name alone.</summary>
    public Uri? Id { get; }

    public Uri? VaultUri { get; }

    public string Name { get; }

    public string? Version { get; }

    /// <summary><c>attributes.enabled</c>; on update, null leaves it as it is.</summary>
    public bool? Enabled { get; set; }

    /// <summary><c>attributes.created</c>, set by Key Vault.</summary>
    public DateTimeOffset? CreatedOn { get; internal set; }

    /// <summary><c>attributes.exp</c>: no signing on or after it (Key Vault, "About keys", date-time attributes). Null: none.</summary>
    public DateTimeOffset? ExpiresOn { get; set; }

    /// <summary><c>attributes.nbf</c>: no signing before it. Null: none.</summary>
    public DateTimeOffset? NotBefore { get; set; }

    /// <summary>The version's tags. An update sends them, replacing all, once this has been read or written.</summary>
    public IDictionary<string, string> Tags => _tags ??= new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary>Whether <see cref="Tags"/> was touched: an update without it leaves the version's tags as they are.</summary>
    internal bool HasTags => _tags is not null;
}
