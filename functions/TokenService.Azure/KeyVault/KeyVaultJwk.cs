using TokenService.Azure.KeyVault.Keys;
using TokenService.Jwt;

namespace TokenService.Azure.KeyVault;

/// <summary>
/// The service's <see cref="PublicJsonWebKey"/> made of a Key Vault <see cref="JsonWebKey"/>, in the form the RFCs fix,
/// so that the RFC 7638 thumbprint (the kid) is the same however the vault or its HSM encoded the octets. Kept when the
/// client becomes Azure.Security.KeyVault.Keys, whose JsonWebKey keeps the octets as sent.
/// </summary>
internal static class KeyVaultJwk
{
    /// <summary>The public key, or null for a key type the service does not sign with.</summary>
    public static PublicJsonWebKey? ToPublicJwk(JsonWebKey key)
    {
        if (key.KeyType.Value.StartsWith("RSA", StringComparison.Ordinal) && key is { N: { } n, E: { } e })
        {
            // RFC 7518 §6.3.1.1: n is the unsigned modulus without leading zero octets, yet some libraries and HSMs emit a
            // 0x00 sign octet (257 octets for a 2048-bit key). Kept, it would change the RFC 7638 thumbprint and make
            // VerificationKey refuse the key.
            if (n.Length > 1 && n[0] == 0)
            {
                n = n[1..];
            }

            return new PublicJsonWebKey { Kty = "RSA", N = Base64UrlEncoding.Encode(n), E = Base64UrlEncoding.Encode(e) };
        }

        if (key.KeyType.Value.StartsWith("EC", StringComparison.Ordinal) && key is { CurveName: { } crv, X: { } x, Y: { } y })
        {
            var size = CoordinateSize(crv.Value);
            return new PublicJsonWebKey
            {
                Kty = "EC",
                Crv = crv.Value,
                X = Base64UrlEncoding.Encode(Coordinate(x, size, "x")),
                Y = Base64UrlEncoding.Encode(Coordinate(y, size, "y")),
            };
        }

        return null;
    }

    /// <summary>RFC 7518 §6.2.1.2: a coordinate is the full size of the curve's field: 32 octets for P-256, 48 for P-384, 66 for P-521.</summary>
    public static int CoordinateSize(string crv) => crv switch
    {
        "P-256" or "P-256K" => 32,
        "P-384" => 48,
        "P-521" => 66,
        _ => throw new FormatException($"\"crv\" {crv} is not a supported curve."),
    };

    /// <summary>
    /// A coordinate of exactly <paramref name="size"/> octets (RFC 7518 §6.2.1.2, §6.2.1.3). An encoder that drops
    /// leading zero octets (an integer, not a fixed-size string) is left-padded; one that adds a 0x00 sign octet (DER
    /// style) is trimmed; both name the same point, so the RFC 7638 thumbprint (the kid) comes out as it would from the
    /// vault's own fixed-size form. Anything longer is not a coordinate of the curve: refused where the bundle is read,
    /// as a Key Vault fault, rather than when the key is built for the JWKS or validation.
    /// </summary>
    public static byte[] Coordinate(byte[] value, int size, string name)
    {
        if (value.Length == size)
        {
            return value;
        }

        var start = 0;
        while (value.Length - start > size && value[start] == 0)
        {
            start++;
        }

        if (value.Length - start > size)
        {
            throw new FormatException($"\"{name}\" is {value.Length} octets, more than the curve's {size}.");
        }

        var padded = new byte[size];
        value.AsSpan(start).CopyTo(padded.AsSpan(size - (value.Length - start)));
        return padded;
    }
}
