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
