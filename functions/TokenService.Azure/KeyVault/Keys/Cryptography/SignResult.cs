namespace TokenService.Azure.KeyVault.Keys.Cryptography;

/// <summary>Stands in for <c>Azure.Security.KeyVault.Keys.Cryptography.SignResult</c>: what a sign returned.</summary>
public sealed class SignResult
{
    internal SignResult(string keyId, byte[] signature, SignatureAlgorithm algorithm)
    {
        KeyId = keyId;
        Signature = signature;
        Algorithm = algorithm;
    }

    /// <summary>The key version that signed (the answer's <c>kid</c>, or the id signed with when the answer has none).</summary>
    public string KeyId { get; }

    /// <summary>
    /// The raw signature: RSA octets, or R‖S for ECDSA (the JOSE form of RFC 7518 §3.4, not DER), as Key Vault returns it.
    /// </summary>
    public byte[] Signature { get; }

    public SignatureAlgorithm Algorithm { get; }
}
