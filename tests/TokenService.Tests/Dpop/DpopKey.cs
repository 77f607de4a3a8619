using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace TokenService.Tests.Dpop;

/// <summary>
/// A client's DPoP key pair and the proofs it signs (RFC 9449 §4.2), built with ECDsa/RSA and Microsoft.IdentityModel's
/// JsonWebTokenHandler, with knobs for every kind of bad proof the attack tests send.
/// </summary>
public sealed class DpopKey : IDisposable
{
    private static readonly JsonWebTokenHandler Handler = new() { SetDefaultTimesOnTokenCreation = false };

    private readonly AsymmetricAlgorithm _key;
    private readonly SecurityKey _signingKey;

    private DpopKey(string alg, AsymmetricAlgorithm key, SecurityKey signingKey, Dictionary<string, object> publicJwk)
    {
        Algorithm = alg;
        _key = key;
        _signingKey = signingKey;
        PublicJwk = publicJwk;
        Thumbprint = ComputeThumbprint(publicJwk);
    }

    public string Algorithm { get; }

    /// <summary>The public key as the <c>jwk</c> header carries it.</summary>
    public Dictionary<string, object> PublicJwk { get; }

    /// <summary>RFC 7638 thumbprint computed here independently of the service (canonical JSON of the required members, SHA-256).</summary>
    public string Thumbprint { get; }

    public static DpopKey Es256()
    {
        var ec = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var p = ec.ExportParameters(false);
        return new DpopKey("ES256", ec, new ECDsaSecurityKey(ec), new Dictionary<string, object>
        {
            ["kty"] = "EC",
            ["crv"] = "P-256",
            ["x"] = Base64UrlEncoder.Encode(p.Q.X!),
            ["y"] = Base64UrlEncoder.Encode(p.Q.Y!),
        });
    }

    public static DpopKey Rsa(string alg = "RS256")
    {
        var rsa = RSA.Create(2048);
        var p = rsa.ExportParameters(false);
        return new DpopKey(alg, rsa, new RsaSecurityKey(rsa), new Dictionary<string, object>
        {
            ["kty"] = "RSA",
            ["n"] = Base64UrlEncoder.Encode(p.Modulus!),
            ["e"] = Base64UrlEncoder.Encode(p.Exponent!),
        });
    }

    /// <summary>An RSA key of <paramref name="bits"/> bits, also sizes the service refuses (see <see cref="HandSignedProof"/>).</summary>
    public static DpopKey Rsa(string alg, int bits)
    {
        var rsa = RSA.Create(bits);
        var p = rsa.ExportParameters(false);
        return new DpopKey(alg, rsa, new RsaSecurityKey(rsa), new Dictionary<string, object>
        {
            ["kty"] = "RSA",
            ["n"] = Base64UrlEncoder.Encode(p.Modulus!),
            ["e"] = Base64UrlEncoder.Encode(p.Exponent!),
        });
    }

    /// <summary>
    /// This RSA key's public JWK with <c>n</c> and <c>e</c> written with leading zero octets, <paramref name="nBytes"/>
    /// and <paramref name="eBytes"/> octets long: the same key, other text (RFC 7518 §6.3.1.1 forbids it).
    /// </summary>
    public Dictionary<string, object> ZeroPaddedRsaJwk(int nBytes, int eBytes = 0)
    {
        var p = ((RSA)_key).ExportParameters(false);
        return new Dictionary<string, object>
        {
            ["kty"] = "RSA",
            ["n"] = Base64UrlEncoder.Encode(ZeroPad(p.Modulus!, nBytes)),
            ["e"] = Base64UrlEncoder.Encode(ZeroPad(p.Exponent!, eBytes)),
        };
    }

    private static byte[] ZeroPad(byte[] value, int length) =>
        length <= value.Length ? value : [.. new byte[length - value.Length], .. value];

    /// <summary>
    /// A proof signed here rather than by the library (which refuses to sign with RSA keys under 2048 bits), with any
    /// <c>jwk</c> and extra header members: <paramref name="header"/> may add <c>crit</c> or anything else.
    /// </summary>
    public string HandSignedProof(string method, string uri, DateTimeOffset iat, IDictionary<string, object>? jwk = null, Action<JsonObject>? header = null)
    {
        var protectedHeader = new JsonObject { ["typ"] = "dpop+jwt", ["alg"] = Algorithm, ["jwk"] = JsonSerializer.SerializeToNode(jwk ?? PublicJwk) };
        header?.Invoke(protectedHeader);
        var payload = new JsonObject { ["jti"] = Guid.NewGuid().ToString(), ["htm"] = method, ["htu"] = uri, ["iat"] = iat.ToUnixTimeSeconds() };
        var signingInput = Encode(protectedHeader) + "." + Encode(payload);
        var data = Encoding.ASCII.GetBytes(signingInput);
        var signature = _key switch
        {
            ECDsa ec => ec.SignData(data, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation),
            RSA rsa => rsa.SignData(data, HashAlgorithmName.SHA256, Algorithm.StartsWith("PS", StringComparison.Ordinal) ? RSASignaturePadding.Pss : RSASignaturePadding.Pkcs1),
            _ => throw new InvalidOperationException(),
        };
        return signingInput + "." + Base64UrlEncoder.Encode(signature);
    }

    /// <summary>
    /// An RS256 proof "signed" without any private key: its <c>jwk</c> has a real 2048-bit modulus and e = 1, so the
    /// RFC 8017 §9.2 encoding of the digest is its own signature (s^1 mod n = EM).
    /// </summary>
    public static string ExponentOneProof(string method, string uri, DateTimeOffset iat)
    {
        using var rsa = RSA.Create(2048);
        var jwk = new JsonObject { ["kty"] = "RSA", ["n"] = Base64UrlEncoder.Encode(rsa.ExportParameters(false).Modulus!), ["e"] = "AQ" };
        var header = new JsonObject { ["typ"] = "dpop+jwt", ["alg"] = "RS256", ["jwk"] = jwk };
        var payload = new JsonObject { ["jti"] = Guid.NewGuid().ToString(), ["htm"] = method, ["htu"] = uri, ["iat"] = iat.ToUnixTimeSeconds() };
        var signingInput = Encode(header) + "." + Encode(payload);
        byte[] digestInfo = [0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20];
        var em = new byte[256];
        em[1] = 0x01;
        var t = digestInfo.Concat(SHA256.HashData(Encoding.ASCII.GetBytes(signingInput))).ToArray();
        Array.Fill(em, (byte)0xff, 2, em.Length - t.Length - 3);
        t.CopyTo(em, em.Length - t.Length);
        return signingInput + "." + Base64UrlEncoder.Encode(em);
    }

    /// <summary>The public JWK with the private exponent/scalar added (private key material in the header).</summary>
    public Dictionary<string, object> JwkWithPrivateMembers()
    {
        var jwk = new Dictionary<string, object>(PublicJwk);
        jwk["d"] = _key is ECDsa ec
            ? Base64UrlEncoder.Encode(ec.ExportParameters(true).D!)
            : Base64UrlEncoder.Encode(((RSA)_key).ExportParameters(true).D!);
        return jwk;
    }

    /// <summary>A proof for <paramref name="method"/> <paramref name="uri"/> created at <paramref name="iat"/>.</summary>
    public string Proof(
        string method, string uri, DateTimeOffset iat, string? accessToken = null, string? nonce = null, string? jti = null,
        string typ = "dpop+jwt", IDictionary<string, object>? jwk = null, Action<Dictionary<string, object>>? claims = null)
    {
        var payload = new Dictionary<string, object>
        {
            ["jti"] = jti ?? Base64UrlEncoder.Encode(RandomNumberGenerator.GetBytes(16)),
            ["htm"] = method,
            ["htu"] = uri,
            ["iat"] = iat.ToUnixTimeSeconds(),
        };
        if (accessToken is not null)
        {
            payload["ath"] = Base64UrlEncoder.Encode(SHA256.HashData(Encoding.ASCII.GetBytes(accessToken)));
        }

        if (nonce is not null)
        {
            payload["nonce"] = nonce;
        }

        claims?.Invoke(payload);
        return Handler.CreateToken(new SecurityTokenDescriptor
        {
            SigningCredentials = new SigningCredentials(_signingKey, Algorithm),
            TokenType = typ,
            AdditionalHeaderClaims = new Dictionary<string, object> { ["jwk"] = jwk ?? PublicJwk },
            Claims = payload,
        });
    }

    /// <summary>An unsigned proof (<c>alg: none</c>) with this key in its header.</summary>
    public string UnsignedProof(string method, string uri, DateTimeOffset iat)
    {
        var header = new JsonObject { ["typ"] = "dpop+jwt", ["alg"] = "none", ["jwk"] = JsonSerializer.SerializeToNode(PublicJwk) };
        var payload = new JsonObject { ["jti"] = Guid.NewGuid().ToString(), ["htm"] = method, ["htu"] = uri, ["iat"] = iat.ToUnixTimeSeconds() };
        return Encode(header) + "." + Encode(payload) + ".";
    }

    /// <summary>An HS256 proof whose <c>jwk</c> header is the symmetric key itself (the HMAC-with-a-public-key confusion).</summary>
    public static string HmacProof(string method, string uri, DateTimeOffset iat)
    {
        var secret = RandomNumberGenerator.GetBytes(32);
        return Handler.CreateToken(new SecurityTokenDescriptor
        {
            SigningCredentials = new SigningCredentials(new SymmetricSecurityKey(secret), SecurityAlgorithms.HmacSha256),
            TokenType = "dpop+jwt",
            AdditionalHeaderClaims = new Dictionary<string, object> { ["jwk"] = new Dictionary<string, object> { ["kty"] = "oct", ["k"] = Base64UrlEncoder.Encode(secret) } },
            Claims = new Dictionary<string, object> { ["jti"] = Guid.NewGuid().ToString(), ["htm"] = method, ["htu"] = uri, ["iat"] = iat.ToUnixTimeSeconds() },
        });
    }

    public void Dispose() => _key.Dispose();

    private static string Encode(JsonNode node) => Base64UrlEncoder.Encode(Encoding.UTF8.GetBytes(node.ToJsonString()));

    private static string ComputeThumbprint(Dictionary<string, object> jwk)
    {
        // RFC 7638 §3.2: the required members in lexicographic order, no whitespace.
        var json = (string)jwk["kty"] == "EC"
            ? $"{{\"crv\":\"{jwk["crv"]}\",\"kty\":\"EC\",\"x\":\"{jwk["x"]}\",\"y\":\"{jwk["y"]}\"}}"
            : $"{{\"e\":\"{jwk["e"]}\",\"kty\":\"RSA\",\"n\":\"{jwk["n"]}\"}}";
        return Base64UrlEncoder.Encode(SHA256.HashData(Encoding.UTF8.GetBytes(json)));
    }
}
