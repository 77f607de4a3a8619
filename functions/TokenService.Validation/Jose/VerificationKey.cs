using System.Security.Cryptography;

namespace TokenService.Validation.Jose;

/// <summary>
/// A public key ready to verify JWS signatures, with the algorithms it is bound to (RFC 8725 §3.1:
/// the algorithm comes from the key, the header may only pick among those).
/// </summary>
public sealed class VerificationKey : IDisposable
{
    private const int MinimumRsaKeySizeBits = 2048;

    private readonly RSA? _rsa;
    private readonly ECDsa? _ecdsa;
    private readonly string[] _algorithms;

    private VerificationKey(string kid, JsonWebKey jwk, RSA? rsa, ECDsa? ecdsa, string[] algorithms)
    {
        Kid = kid;
        Jwk = jwk;
        _rsa = rsa;
        _ecdsa = ecdsa;
        _algorithms = algorithms;
    }

    public string Kid { get; }
    public JsonWebKey Jwk { get; }
    public IReadOnlyList<string> Algorithms => _algorithms;

    /// <summary>
    /// Builds a verification key from a public JWK. Returns null when the JWK is malformed, too weak
    /// (RSA below 2048 bits) or bound to an algorithm we never accept.
    /// </summary>
    public static VerificationKey? Create(JsonWebKey jwk, string? kidOverride = null)
    {
        var kid = kidOverride ?? jwk.Kid ?? jwk.ComputeThumbprint();
        try
        {
            if (jwk.Kty == "RSA")
            {
                var n = Base64UrlEncoding.DecodeStrict(jwk.N);
                var e = Base64UrlEncoding.DecodeStrict(jwk.E);
                if (n is null || e is null || n.Length * 8 < MinimumRsaKeySizeBits || n[0] == 0)
                {
                    return null;
                }

                string[] algs = jwk.Alg is null
                    ? [JwsAlgorithms.RS256, JwsAlgorithms.RS384, JwsAlgorithms.RS512, JwsAlgorithms.PS256, JwsAlgorithms.PS384, JwsAlgorithms.PS512]
                    : JwsAlgorithms.Canonicalize(jwk.Alg) is { } a && JwsAlgorithms.IsRsa(a) ? [a] : [];
                if (algs.Length == 0)
                {
                    return null;
                }

                var rsa = RSA.Create();
                rsa.ImportParameters(new RSAParameters { Modulus = n, Exponent = e });
                return new VerificationKey(kid, jwk, rsa, null, algs);
            }

            if (jwk.Kty == "EC")
            {
                var (curve, alg) = jwk.Crv switch
                {
                    "P-256" => (ECCurve.NamedCurves.nistP256, JwsAlgorithms.ES256),
                    "P-384" => (ECCurve.NamedCurves.nistP384, JwsAlgorithms.ES384),
                    "P-521" => (ECCurve.NamedCurves.nistP521, JwsAlgorithms.ES512),
                    _ => (default(ECCurve), (string?)null),
                };
                var x = Base64UrlEncoding.DecodeStrict(jwk.X);
                var y = Base64UrlEncoding.DecodeStrict(jwk.Y);
                if (alg is null || x is null || y is null || (jwk.Alg is not null && jwk.Alg != alg))
                {
                    return null;
                }

                var ecdsa = ECDsa.Create();
                ecdsa.ImportParameters(new ECParameters { Curve = curve, Q = new ECPoint { X = x, Y = y } });
                return new VerificationKey(kid, jwk, null, ecdsa, [alg]);
            }
        }
        catch (CryptographicException)
        {
            return null;
        }

        return null;
    }

    public bool Allows(string alg) => Array.IndexOf(_algorithms, alg) >= 0;

    /// <summary>Verifies a JWS signature. The caller has already checked <see cref="Allows"/>.</summary>
    public bool Verify(string alg, ReadOnlySpan<byte> signingInput, ReadOnlySpan<byte> signature)
    {
        try
        {
            if (_rsa is not null)
            {
                return _rsa.VerifyData(signingInput, signature, JwsAlgorithms.HashFor(alg), JwsAlgorithms.RsaPaddingFor(alg));
            }

            // RFC 7518 §3.4: the JWS signature is R‖S of fixed size (IEEE P1363), never DER.
            return _ecdsa is not null
                && signature.Length == JwsAlgorithms.EcSignatureSize(alg)
                && _ecdsa.VerifyData(signingInput, signature, JwsAlgorithms.HashFor(alg), DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
        }
        catch (CryptographicException)
        {
            return false;
        }
    }

    public void Dispose()
    {
        _rsa?.Dispose();
        _ecdsa?.Dispose();
    }
}
