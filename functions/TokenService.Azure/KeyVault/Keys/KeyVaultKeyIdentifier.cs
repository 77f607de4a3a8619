namespace TokenService.Azure.KeyVault.Keys;

/// <summary>
/// Stands in for <c>Azure.Security.KeyVault.Keys.KeyVaultKeyIdentifier</c>: a key id URL
/// (<c>https://{vault}/keys/{name}/{version}</c>) read into its vault, name and version.
/// </summary>
public readonly struct KeyVaultKeyIdentifier
{
    public KeyVaultKeyIdentifier(Uri id)
    {
        if (!TryParse(id, out this))
        {
            throw new ArgumentException($"'{id}' is not a Key Vault key id (https://{{vault}}/keys/{{name}}[/{{version}}]).", nameof(id));
        }
    }

    public Uri SourceId { get; private init; }

    public Uri VaultUri { get; private init; }

    public string Name { get; private init; }

    /// <summary>Null for a key id without a version (the latest).</summary>
    public string? Version { get; private init; }

    public static bool TryCreate(Uri? id, out KeyVaultKeyIdentifier identifier)
    {
        identifier = default;
        return id is not null && TryParse(id, out identifier);
    }

    private static bool TryParse(Uri id, out KeyVaultKeyIdentifier identifier)
    {
        identifier = default;
        if (!id.IsAbsoluteUri)
        {
            return false;
        }

        var segments = id.AbsolutePath.Split('/', StringSplitOptions.RemoveEmptyEntries);
        if (segments.Length is < 2 or > 3 || !string.Equals(segments[0], "keys", StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        identifier = new KeyVaultKeyIdentifier
        {
            SourceId = id,
            VaultUri = new Uri(id.GetLeftPart(UriPartial.Authority)),
            Name = Uri.UnescapeDataString(segments[1]),
            Version = segments.Length == 3 ? Uri.UnescapeDataString(segments[2]) : null,
        };
        return true;
    }
}
