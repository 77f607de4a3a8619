namespace TokenService.Azure.KeyVault.Keys;

/// <summary>
/// Stands in for <c>Azure.Security.KeyVault.Keys.JsonWebKey</c>: the public half of a key version as Key Vault returns
/// it (RFC 7517), members as octets. Only the members the service reads: <see cref="KeyVaultJwk"/> makes the service's
/// <c>PublicJsonWebKey</c> of it. Unlike the SDK's, ours is read strictly (<see cref="KeyClient"/>): a member that is not
/// base64url, a curve the service does not know or a coordinate longer than its curve's field is a malformed answer.
/// </summary>
public sealed class JsonWebKey
{
    /// <summary>The key version's id URL (<c>kid</c>).</summary>
    public required string Id { get; init; }

    public required KeyType KeyType { get; init; }

    public KeyCurveName? CurveName { get; init; }

    /// <summary>RSA modulus, as sent (some HSMs add a 0x00 sign octet).</summary>
    public byte[]? N { get; init; }

    /// <summary>RSA public exponent.</summary>
    public byte[]? E { get; init; }

    /// <summary>EC x coordinate, the curve's field size (read so: an encoder may drop leading zero octets or add a sign octet).</summary>
    public byte[]? X { get; init; }

    /// <summary>EC y coordinate, the curve's field size.</summary>
    public byte[]? Y { get; init; }
}
