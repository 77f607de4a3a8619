using System.Security.Cryptography;
using Microsoft.IdentityModel.Tokens;

namespace TokenService.Jose;

/// <summary>
/// The asymmetric JWS algorithms (RFC 7518 §3) this product accepts, for every JWS it reads: ID tokens, SETs, its own
/// access tokens (core and resource-server library) and DPoP proofs. "none" and the HMAC family are never accepted
/// (RFC 8725 §3.1, §3.2; RFC 9449 §11.6): an HMAC "signature" keyed with a public key proves nothing.
/// </summary>
public static class JwsAlgorithms
{
    public const string RS256 = "RS256";
    public const string RS384 = "RS384";
    public const string RS512 = "RS512";
    public const string PS256 = "PS256";
    public const string PS384 = "PS384";
    public const string PS512 = "PS512";
    public const string ES256 = "ES256";
    public const string ES384 = "ES384";
    public const string ES512 = "ES512";

    /// <summary>
    /// Every accepted algorithm. ES256 first: the order is the one <c>dpop_signing_alg_values_supported</c> advertises
    /// (RFC 9449 §5.1), and ES256 is what browsers' WebCrypto makes non-extractable keys for.
    /// </summary>
    public static readonly IReadOnlyList<string> All = [ES256, ES384, ES512, PS256, PS384, PS512, RS256, RS384, RS512];

    /// <summary>Smallest RSA modulus accepted, in bits (RFC 7518 §3.3).</summary>
    public const int MinimumRsaKeySizeBits = 2048;

    /// <summary>Algorithms this service signs with (<c>Keys__Algorithm</c>, docs/api.md "Configuration").</summary>
    public static readonly IReadOnlyList<string> Signing = [RS256, PS256, ES256];

    /// <summary>Returns the canonical constant for an exact (case-sensitive, RFC 7515 §4.1.1) algorithm name.</summary>
    public static string? Canonicalize(ReadOnlySpan<char> alg) => alg switch
    {
        "RS256" => RS256,
        "RS384" => RS384,
        "RS512" => RS512,
        "PS256" => PS256,
        "PS384" => PS384,
        "PS512" => PS512,
        "ES256" => ES256,
        "ES384" => ES384,
        "ES512" => ES512,
        _ => null,
    };

    public static bool IsRsa(string alg) => alg[0] is 'R' or 'P';

    public static HashAlgorithmName HashFor(string alg) => alg[^3..] switch
    {
        "256" => HashAlgorithmName.SHA256,
        "384" => HashAlgorithmName.SHA384,
        "512" => HashAlgorithmName.SHA512,
        _ => throw new ArgumentOutOfRangeException(nameof(alg), alg, "Unsupported JWS algorithm."),
    };

    public static RSASignaturePadding RsaPaddingFor(string alg) =>
        alg[0] == 'P' ? RSASignaturePadding.Pss : RSASignaturePadding.Pkcs1;

    /// <summary>The curve an ES* algorithm is bound to (RFC 7518 §3.4).</summary>
    public static string? CurveFor(string alg) => alg switch
    {
        ES256 => "P-256",
        ES384 => "P-384",
        ES512 => "P-521",
        _ => null,
    };

    /// <summary>The one ES* algorithm of a JWK curve (RFC 7518 §3.4, §6.2.1.1), or null for another curve.</summary>
    public static string? AlgorithmForCurve(string? crv) => crv switch
    {
        "P-256" => ES256,
        "P-384" => ES384,
        "P-521" => ES512,
        _ => null,
    };

    /// <summary>The .NET curve of a JWK curve name (RFC 7518 §6.2.1.1), or null for another curve.</summary>
    public static ECCurve? NamedCurve(string? crv) => crv switch
    {
        "P-256" => ECCurve.NamedCurves.nistP256,
        "P-384" => ECCurve.NamedCurves.nistP384,
        "P-521" => ECCurve.NamedCurves.nistP521,
        _ => null,
    };

    /// <summary>Size of an ES* signature in JOSE form (R‖S, RFC 7518 §3.4).</summary>
    public static int EcSignatureSize(string alg) => alg switch
    {
        ES256 => 64,
        ES384 => 96,
        ES512 => 132,
        _ => 0,
    };

    /// <summary>
    /// RFC 8725 §3.1: the algorithm comes from the key, the header may only pick among those. A JWK with <c>alg</c> allows
    /// that algorithm alone (RFC 7517 §4.4), and only if it also fits the key's type; an RSA key allows RS*/PS* and an EC
    /// key the one ES* of its curve (RFC 7518 §3.4). Keys a resource server configures itself rather than through a JWKS
    /// (<see cref="RsaSecurityKey"/>, <see cref="ECDsaSecurityKey"/>) follow the same type and curve rule; any other key
    /// allows nothing. Microsoft.IdentityModel's own allow-list (<c>ValidAlgorithms</c>) does not bind the algorithm to
    /// the key, so every validator in the product also sets <c>AlgorithmValidator</c> to this check.
    /// </summary>
    public static bool KeyAllows(SecurityKey key, string algorithm) => key switch
    {
        JsonWebKey jwk => (jwk.Alg is null || string.Equals(jwk.Alg, algorithm, StringComparison.Ordinal)) && jwk.Kty switch
        {
            "RSA" => IsRsaAlgorithm(algorithm),
            "EC" => CurveFor(algorithm) is { } curve && string.Equals(curve, jwk.Crv, StringComparison.Ordinal),
            _ => false,
        },
        RsaSecurityKey => IsRsaAlgorithm(algorithm),
        ECDsaSecurityKey ec => CurveFor(algorithm) is { } curve && string.Equals(curve, CurveOfKeySize(ec.KeySize), StringComparison.Ordinal),
        _ => false,
    };

    private static bool IsRsaAlgorithm(string algorithm) => algorithm is RS256 or RS384 or RS512 or PS256 or PS384 or PS512;

    private static string? CurveOfKeySize(int bits) => bits switch
    {
        256 => "P-256",
        384 => "P-384",
        521 => "P-521",
        _ => null,
    };

    /// <summary>
    /// Whether a verification key from a JWKS can be used at all: signature use, a known algorithm for its type, RSA of
    /// at least 2048 bits (RFC 7518 §3.3) with a canonical modulus, EC on P-256/384/521. Symmetric ("oct") keys never:
    /// an HMAC keyed with public material proves nothing (RFC 8725 §3.2).
    /// </summary>
    public static bool IsUsableVerificationKey(JsonWebKey jwk)
    {
        if (jwk.Use is not null && jwk.Use != "sig")
        {
            return false;
        }

        if (jwk.Alg is not null && Canonicalize(jwk.Alg) is null)
        {
            return false;
        }

        switch (jwk.Kty)
        {
            case "RSA":
                var n = Base64UrlEncoding.DecodeStrict(jwk.N);
                var e = Base64UrlEncoding.DecodeStrict(jwk.E);
                return n is { Length: > 0 } && e is { Length: > 0 } && n[0] != 0 && n.Length * 8 >= MinimumRsaKeySizeBits
                    && (jwk.Alg is null || IsRsa(jwk.Alg));
            case "EC":
                var alg = AlgorithmForCurve(jwk.Crv);
                var size = alg is null ? 0 : (EcSignatureSize(alg) / 2);
                return alg is not null && (jwk.Alg is null || jwk.Alg == alg)
                    && Base64UrlEncoding.DecodeStrict(jwk.X)?.Length == size && Base64UrlEncoding.DecodeStrict(jwk.Y)?.Length == size;
            default:
                return false;
        }
    }
}
