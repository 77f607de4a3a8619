using System.Buffers;
using System.Security.Cryptography;
using System.Text.Json;
using TokenService.Validation.Jose;

namespace TokenService.Idp;

/// <summary>
/// A stand-in IdP for the embedded defaults in Development only, when no <c>Idp</c> section is configured:
/// it mints ID tokens for any user at <c>POST /dev-idp/id-token</c> so that the token lifecycle can be tried
/// with curl. It is never registered outside Development.
/// </summary>
public sealed class DevelopmentIdp : IVerificationKeyResolver, IDisposable
{
    public const string Audience = "token-service-dev";

    private readonly RSA _key = RSA.Create(2048);
    private readonly VerificationKey _verificationKey;
    private readonly string _kid;
    private readonly TimeProvider _time;

    public DevelopmentIdp(string tokenServiceIssuer, TimeProvider time)
    {
        _time = time;
        Issuer = tokenServiceIssuer.TrimEnd('/') + "/dev-idp";
        var jwk = JsonWebKey.FromRsa(_key.ExportParameters(false), JwsAlgorithms.RS256);
        _kid = jwk.ComputeThumbprint();
        Jwk = jwk.WithKid(_kid);
        _verificationKey = VerificationKey.Create(Jwk)!;
    }

    public string Issuer { get; }
    public JsonWebKey Jwk { get; }

    public ValueTask<KeyResolution> ResolveAsync(string? kid, CancellationToken cancellationToken) =>
        ValueTask.FromResult(kid is null || kid == _kid ? KeyResolution.Found(_verificationKey) : KeyResolution.Unknown);

    /// <summary>Mints an RS256 ID token for <paramref name="subject"/> valid for five minutes.</summary>
    public string MintIdToken(string subject, string? acr, IReadOnlyList<string> amr)
    {
        var now = _time.GetUtcNow().ToUnixTimeSeconds();
        var header = Json(w =>
        {
            w.WriteString("alg", JwsAlgorithms.RS256);
            w.WriteString("kid", _kid);
            w.WriteString("typ", "JWT");
        });
        var payload = Json(w =>
        {
            w.WriteString("iss", Issuer);
            w.WriteString("sub", subject);
            w.WriteString("aud", Audience);
            w.WriteNumber("iat", now);
            w.WriteNumber("nbf", now);
            w.WriteNumber("exp", now + 300);
            w.WriteNumber("auth_time", now);
            w.WriteString("jti", Base64UrlEncoding.Encode(RandomNumberGenerator.GetBytes(16)));
            if (acr is not null)
            {
                w.WriteString("acr", acr);
            }

            if (amr.Count > 0)
            {
                w.WriteStartArray("amr");
                foreach (var value in amr)
                {
                    w.WriteStringValue(value);
                }

                w.WriteEndArray();
            }
        });
        var signingInput = Base64UrlEncoding.Encode(header) + "." + Base64UrlEncoding.Encode(payload);
        var signature = _key.SignData(System.Text.Encoding.ASCII.GetBytes(signingInput), HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        return signingInput + "." + Base64UrlEncoding.Encode(signature);
    }

    private static byte[] Json(Action<Utf8JsonWriter> members)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            members(writer);
            writer.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }

    public void Dispose() => _key.Dispose();
}
