using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.IdentityModel.Tokens;

namespace TokenService.Jwt;

/// <summary>
/// The public half of one of our signing keys (RFC 7517), as the JWKS endpoint publishes it and the key providers
/// (local file, Key Vault) hand it over. Private members are never read or written: anything that reaches a JWKS
/// document comes through this type and so carries public fields only. Parsing of other issuers' JWKS documents is
/// Microsoft.IdentityModel's (<see cref="JsonWebKeySet"/>); verification uses <see cref="ToSecurityKey"/>.
/// </summary>
public sealed class PublicJsonWebKey
{
    /// <summary>RSA keys below this size are refused (RFC 7518 §3.3: 2048 bits or larger).</summary>
    public const int MinimumRsaKeySizeBits = JwsAlgorithms.MinimumRsaKeySizeBits;

    public required string Kty { get; init; }
    public string? Kid { get; init; }
    public string? Use { get; init; }
    public string? Alg { get; init; }
    public string? N { get; init; }
    public string? E { get; init; }
    public string? Crv { get; init; }
    public string? X { get; init; }
    public string? Y { get; init; }

    public static PublicJsonWebKey FromRsa(RSAParameters parameters, string? alg = null) => new()
    {
        Kty = "RSA",
        Alg = alg,
        Use = "sig",
        N = Base64UrlEncoding.Encode(parameters.Modulus),
        E = Base64UrlEncoding.Encode(parameters.Exponent),
    };

    public static PublicJsonWebKey FromEc(ECParameters parameters, string? alg = null) => new()
    {
        Kty = "EC",
        Alg = alg,
        Use = "sig",
        Crv = parameters.Curve.Oid.FriendlyName switch
        {
            "nistP256" or "ECDSA_P256" => "P-256",
            "nistP384" or "ECDSA_P384" => "P-384",
            "nistP521" or "ECDSA_P521" => "P-521",
            var other => throw new ArgumentException($"Unsupported curve {other}.", nameof(parameters)),
        },
        X = Base64UrlEncoding.Encode(parameters.Q.X),
        Y = Base64UrlEncoding.Encode(parameters.Q.Y),
    };

    /// <summary>Copies this key with <paramref name="kid"/> set.</summary>
    public PublicJsonWebKey WithKid(string kid) => new()
    {
        Kty = Kty, Kid = kid, Use = Use, Alg = Alg, N = N, E = E, Crv = Crv, X = X, Y = Y,
    };

    /// <summary>
    /// RFC 7638 §3 thumbprint (SHA-256 over the required members in lexicographic order), base64url-encoded: the
    /// <c>kid</c> of our own keys (docs/api.md, "Keys and the JWKS"). Computed by Microsoft.IdentityModel.
    /// </summary>
    public string ComputeThumbprint() => Base64UrlEncoder.Encode(ToIdentityModel().ComputeJwkThumbprint());

    /// <summary>
    /// The key as Microsoft.IdentityModel verifies with it: the JWK's public members only, its <c>kid</c> and
    /// <c>alg</c> (see <see cref="JwsAlgorithms.KeyAllows"/>). Null when the key cannot verify any algorithm we accept
    /// (malformed members, an RSA modulus under 2048 bits, an unknown curve or algorithm).
    /// </summary>
    public JsonWebKey? ToSecurityKey()
    {
        var key = ToIdentityModel();
        return JwsAlgorithms.IsUsableVerificationKey(key) ? key : null;
    }

    private JsonWebKey ToIdentityModel()
    {
        var key = new JsonWebKey { Kty = Kty, Kid = Kid, Alg = Alg, Use = Use };
        if (Kty == "RSA")
        {
            key.N = N;
            key.E = E;
        }
        else
        {
            key.Crv = Crv;
            key.X = X;
            key.Y = Y;
        }

        return key;
    }

    /// <summary>Writes the public members only.</summary>
    public void WriteTo(Utf8JsonWriter writer)
    {
        writer.WriteStartObject();
        writer.WriteString("kty", Kty);
        if (Use is not null) writer.WriteString("use", Use);
        if (Kid is not null) writer.WriteString("kid", Kid);
        if (Alg is not null) writer.WriteString("alg", Alg);
        if (Kty == "RSA")
        {
            writer.WriteString("n", N);
            writer.WriteString("e", E);
        }
        else
        {
            writer.WriteString("crv", Crv);
            writer.WriteString("x", X);
            writer.WriteString("y", Y);
        }

        writer.WriteEndObject();
    }
}
