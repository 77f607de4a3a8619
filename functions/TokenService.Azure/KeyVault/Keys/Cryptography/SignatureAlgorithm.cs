namespace TokenService.Azure.KeyVault.Keys.Cryptography;

/// <summary>
/// Stands in for <c>Azure.Security.KeyVault.Keys.Cryptography.SignatureAlgorithm</c>: a JWS <c>alg</c> (RFC 7518 §3.1)
/// Key Vault signs with. The SDK's is an extensible enum with a constant for each; ours is made from the configured
/// algorithm's name, and compares ordinally.
/// </summary>
public readonly record struct SignatureAlgorithm(string Value)
{
    public static SignatureAlgorithm RS256 { get; } = new("RS256");
    public static SignatureAlgorithm PS256 { get; } = new("PS256");
    public static SignatureAlgorithm ES256 { get; } = new("ES256");

    public override string ToString() => Value;
}
