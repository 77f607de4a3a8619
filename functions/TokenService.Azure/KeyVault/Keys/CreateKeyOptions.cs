namespace TokenService.Azure.KeyVault.Keys;

/// <summary>
/// Stands in for <c>Azure.Security.KeyVault.Keys.CreateKeyOptions</c>: the attributes and tags of a new key version.
/// <see cref="NotBefore"/> and <see cref="ExpiresOn"/> become <c>attributes.nbf</c> and <c>attributes.exp</c>, NumericDate
/// (whole seconds since the epoch) as the REST reference ("Create Key", KeyAttributes) defines them.
/// </summary>
public class CreateKeyOptions
{
    public bool? Enabled { get; set; }

    public DateTimeOffset? NotBefore { get; set; }

    public DateTimeOffset? ExpiresOn { get; set; }

    public IList<KeyOperation> KeyOperations { get; } = [];

    public IDictionary<string, string> Tags { get; } = new Dictionary<string, string>(StringComparer.Ordinal);
}

/// <summary>Stands in for <c>Azure.Security.KeyVault.Keys.CreateRsaKeyOptions</c>.</summary>
/// <param name="name">The key's name.</param>
/// <param name="hardwareProtected">RSA-HSM rather than RSA.</param>
public sealed class CreateRsaKeyOptions(string name, bool hardwareProtected = false) : CreateKeyOptions
{
    public string Name { get; } = name;

    public KeyType KeyType { get; } = hardwareProtected ? KeyType.RsaHsm : KeyType.Rsa;

    public int? KeySize { get; set; }
}

/// <summary>Stands in for <c>Azure.Security.KeyVault.Keys.CreateEcKeyOptions</c>.</summary>
/// <param name="name">The key's name.</param>
/// <param name="hardwareProtected">EC-HSM rather than EC.</param>
public sealed class CreateEcKeyOptions(string name, bool hardwareProtected = false) : CreateKeyOptions
{
    public string Name { get; } = name;

    public KeyType KeyType { get; } = hardwareProtected ? KeyType.EcHsm : KeyType.Ec;

    public KeyCurveName? CurveName { get; set; }
}
