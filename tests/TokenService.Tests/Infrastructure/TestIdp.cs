using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using TokenService.Jwt;

namespace TokenService.Tests.Infrastructure;

/// <summary>
/// A test identity provider: RSA and EC signing keys published as a JWKS file, and ID tokens minted with
/// any claims and headers, including the malformed and malicious ones the negative tests need.
/// </summary>
public sealed class TestIdp : IDisposable
{
    public const string Issuer = "https://idp.test.example";
    public const string Audience = "token-service-tests";

    private readonly TimeProvider _time;

    public TestIdp(TimeProvider? time = null)
    {
        _time = time ?? TimeProvider.System;
        RsaJwk = PublicJsonWebKey.FromRsa(Rsa.ExportParameters(false), "RS256");
        RsaKid = RsaJwk.ComputeThumbprint();
        EcJwk = PublicJsonWebKey.FromEc(Ec.ExportParameters(false), "ES256");
        EcKid = EcJwk.ComputeThumbprint();
        JwksPath = Path.Combine(Path.GetTempPath(), "idp-jwks-" + Guid.NewGuid().ToString("N") + ".json");
        WriteJwks();
    }

    public RSA Rsa { get; } = RSA.Create(2048);
    public ECDsa Ec { get; } = ECDsa.Create(ECCurve.NamedCurves.nistP256);
    public PublicJsonWebKey RsaJwk { get; }
    public PublicJsonWebKey EcJwk { get; }
    public string RsaKid { get; }
    public string EcKid { get; }
    public string JwksPath { get; }

    public void WriteJwks(params PublicJsonWebKey[] extra)
    {
        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream))
        {
            writer.WriteStartObject();
            writer.WriteStartArray("keys");
            RsaJwk.WithKid(RsaKid).WriteTo(writer);
            EcJwk.WithKid(EcKid).WriteTo(writer);
            foreach (var key in extra)
            {
                key.WriteTo(writer);
            }

            writer.WriteEndArray();
            writer.WriteEndObject();
        }

        File.WriteAllBytes(JwksPath, stream.ToArray());
    }

    public JsonObject Claims(string subject, TimeSpan? lifetime = null)
    {
        var now = _time.GetUtcNow().ToUnixTimeSeconds();
        return new JsonObject
        {
            ["iss"] = Issuer,
            ["sub"] = subject,
            ["aud"] = Audience,
            ["iat"] = now,
            ["nbf"] = now,
            ["exp"] = now + (long)(lifetime ?? TimeSpan.FromMinutes(5)).TotalSeconds,
            ["auth_time"] = now,
            ["jti"] = Guid.NewGuid().ToString("N"),
        };
    }

    public string IdToken(string subject, Action<JsonObject>? claims = null)
    {
        var payload = Claims(subject);
        claims?.Invoke(payload);
        return Sign(payload);
    }

    public JsonObject Header(string alg = "RS256") => new() { ["alg"] = alg, ["kid"] = alg.StartsWith("ES", StringComparison.Ordinal) ? EcKid : RsaKid, ["typ"] = "JWT" };

    /// <summary>Signs with the IdP's RSA key (RS256/PS256) or EC key (ES256) as the header's alg says.</summary>
    public string Sign(JsonObject payload, JsonObject? header = null)
    {
        header ??= Header();
        var input = Encode(header) + "." + Encode(payload);
        var alg = (string)header["alg"]!;
        var data = Encoding.ASCII.GetBytes(input);
        var signature = alg switch
        {
            "RS256" => Rsa.SignData(data, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1),
            "PS256" => Rsa.SignData(data, HashAlgorithmName.SHA256, RSASignaturePadding.Pss),
            "ES256" => Ec.SignData(data, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation),
            _ => Rsa.SignData(data, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1),
        };
        return input + "." + Base64UrlEncoding.Encode(signature);
    }

    public static string Encode(JsonNode node) => Base64UrlEncoding.Encode(Encoding.UTF8.GetBytes(node.ToJsonString()));

    public void Dispose()
    {
        Rsa.Dispose();
        Ec.Dispose();
        File.Delete(JwksPath);
    }
}
