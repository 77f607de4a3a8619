using System.Security.Cryptography;

namespace TokenService.Validation.Jose;

/// <summary>
/// The asymmetric JWS algorithms (RFC 7518 §3) this product accepts. "none" and the HMAC family are
/// never accepted (RFC 8725 §3.1, §3.2): an HMAC "signature" keyed with a public key proves nothing.
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

    public static readonly IReadOnlyList<string> All = [RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512];

    /// <summary>Algorithms this service signs with (CONTRACT §1 <c>Keys__Algorithm</c>).</summary>
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

    /// <summary>Size of an ES* signature in JOSE form (R‖S, RFC 7518 §3.4).</summary>
    public static int EcSignatureSize(string alg) => alg switch
    {
        ES256 => 64,
        ES384 => 96,
        ES512 => 132,
        _ => 0,
    };
}
