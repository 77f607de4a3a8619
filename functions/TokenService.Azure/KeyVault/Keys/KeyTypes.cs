namespace TokenService.Azure.KeyVault.Keys;

// String-valued names, shaped like Azure.Security.KeyVault.Keys' extensible enums (KeyType, KeyCurveName,
// KeyOperation): only the values the service uses. Ours are record structs, so equality is ordinal; the SDK's compare
// case-insensitively, which no value Key Vault returns depends on.

/// <summary>Stands in for <c>Azure.Security.KeyVault.Keys.KeyType</c>: the JWK <c>kty</c> Key Vault knows.</summary>
public readonly record struct KeyType(string Value)
{
    public static KeyType Rsa { get; } = new("RSA");
    public static KeyType RsaHsm { get; } = new("RSA-HSM");
    public static KeyType Ec { get; } = new("EC");
    public static KeyType EcHsm { get; } = new("EC-HSM");

    public override string ToString() => Value;
}

/// <summary>Stands in for <c>Azure.Security.KeyVault.Keys.KeyCurveName</c>: the JWK <c>crv</c> of an EC key.</summary>
public readonly record struct KeyCurveName(string Value)
{
    public static KeyCurveName P256 { get; } = new("P-256");
    public static KeyCurveName P384 { get; } = new("P-384");
    public static KeyCurveName P521 { get; } = new("P-521");

    public override string ToString() => Value;
}

/// <summary>Stands in for <c>Azure.Security.KeyVault.Keys.KeyOperation</c>: what a key may be used for (<c>key_ops</c>).</summary>
public readonly record struct KeyOperation(string Value)
{
    public static KeyOperation Sign { get; } = new("sign");
    public static KeyOperation Verify { get; } = new("verify");

    public override string ToString() => Value;
}
