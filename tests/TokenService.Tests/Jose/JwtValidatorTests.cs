using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using TokenService.Tests.Infrastructure;
using TokenService.Jwt;

namespace TokenService.Tests.Jose;

/// <summary>
/// RFC 8725 attack inputs against the JWS validator (Microsoft.IdentityModel's JsonWebTokenHandler behind
/// <see cref="JwsPrecheck"/>), with keys only from the key source.
/// </summary>
public sealed class JwtValidatorTests : IDisposable
{
    private readonly TestIdp _idp = new();
    private readonly StaticKeySource _keys;
    private readonly JwtValidationOptions _options = new() { Issuer = TestIdp.Issuer, Audiences = [TestIdp.Audience] };

    public JwtValidatorTests()
    {
        _keys = new StaticKeySource(_idp.RsaJwk.WithKid(_idp.RsaKid), _idp.EcJwk.WithKid(_idp.EcKid));
    }

    public void Dispose() => _idp.Dispose();

    private Task<JwtValidationResult> Validate(string token, JwtValidationOptions? options = null) =>
        new JwtValidator(options ?? _options, _keys, TimeProvider.System).ValidateAsync(token, CancellationToken.None).AsTask();

    [Fact]
    public async Task Valid_rs256_and_es256_tokens_are_accepted()
    {
        foreach (var alg in (string[])["RS256", "ES256"])
        {
            var result = await Validate(_idp.Sign(_idp.Claims("alice"), _idp.Header(alg)));
            Assert.True(result.IsValid, $"{alg}: {result.Error} {result.Description}");
            Assert.Equal("alice", result.Payload!.Subject);
        }
    }

    [Fact]
    public async Task Ps256_is_refused_on_a_key_whose_jwk_says_rs256_and_accepted_on_a_key_without_alg()
    {
        var token = _idp.Sign(_idp.Claims("alice"), _idp.Header("PS256"));
        Assert.Equal(JwtValidationError.UnsupportedAlgorithm, (await Validate(token)).Error);

        var unbound = new PublicJsonWebKey { Kty = "RSA", N = _idp.RsaJwk.N, E = _idp.RsaJwk.E, Kid = _idp.RsaKid };
        var result = await new JwtValidator(_options, new StaticKeySource(unbound), TimeProvider.System).ValidateAsync(token, CancellationToken.None);
        Assert.True(result.IsValid, result.Description);
    }

    [Theory]
    [InlineData("none")]
    [InlineData("None")]
    [InlineData("NONE")]
    [InlineData("nOnE")]
    public async Task Alg_none_in_any_casing_is_refused(string alg)
    {
        var header = new JsonObject { ["alg"] = alg, ["kid"] = _idp.RsaKid };
        var unsigned = TestIdp.Encode(header) + "." + TestIdp.Encode(_idp.Claims("alice")) + ".";
        Assert.False((await Validate(unsigned)).IsValid);
        var withJunkSignature = unsigned + "c2ln";
        var result = await Validate(withJunkSignature);
        Assert.Equal(JwtValidationError.UnsupportedAlgorithm, result.Error);
    }

    [Fact]
    public async Task Hs256_signed_with_the_public_key_is_refused()
    {
        // The classic key-confusion attack: HMAC keyed with the RSA public key's bytes.
        var header = new JsonObject { ["alg"] = "HS256", ["kid"] = _idp.RsaKid };
        var input = TestIdp.Encode(header) + "." + TestIdp.Encode(_idp.Claims("mallory"));
        foreach (var secret in new[] { Encoding.ASCII.GetBytes(_idp.Rsa.ExportSubjectPublicKeyInfoPem()), _idp.Rsa.ExportSubjectPublicKeyInfo(), _idp.Rsa.ExportRSAPublicKey() })
        {
            var mac = HMACSHA256.HashData(secret, Encoding.ASCII.GetBytes(input));
            var result = await Validate(input + "." + Base64UrlEncoding.Encode(mac));
            Assert.Equal(JwtValidationError.UnsupportedAlgorithm, result.Error);
        }
    }

    [Fact]
    public async Task Es256_header_on_an_rsa_key_is_refused_because_the_algorithm_is_bound_to_the_key()
    {
        var header = new JsonObject { ["alg"] = "ES256", ["kid"] = _idp.RsaKid };
        var token = _idp.Sign(_idp.Claims("alice"), header);
        Assert.Equal(JwtValidationError.UnsupportedAlgorithm, (await Validate(token)).Error);
    }

    [Fact]
    public async Task Embedded_jwk_jku_x5u_and_x5c_headers_are_ignored()
    {
        using var attacker = RSA.Create(2048);
        var attackerJwk = PublicJsonWebKey.FromRsa(attacker.ExportParameters(false));
        var jwk = new JsonObject { ["kty"] = "RSA", ["n"] = attackerJwk.N, ["e"] = attackerJwk.E };
        var header = new JsonObject
        {
            ["alg"] = "RS256",
            ["jwk"] = jwk,
            ["jku"] = "https://attacker.example/jwks.json",
            ["x5u"] = "https://attacker.example/cert.pem",
            ["x5c"] = new JsonArray("MIIB"),
        };
        var input = TestIdp.Encode(header) + "." + TestIdp.Encode(_idp.Claims("mallory"));
        var signature = attacker.SignData(Encoding.ASCII.GetBytes(input), HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var result = await Validate(input + "." + Base64UrlEncoding.Encode(signature));
        Assert.False(result.IsValid);
        Assert.True(result.Error is JwtValidationError.UnknownKey or JwtValidationError.InvalidSignature, result.Error.ToString());

        header["kid"] = _idp.RsaKid;
        input = TestIdp.Encode(header) + "." + TestIdp.Encode(_idp.Claims("mallory"));
        signature = attacker.SignData(Encoding.ASCII.GetBytes(input), HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        Assert.Equal(JwtValidationError.InvalidSignature, (await Validate(input + "." + Base64UrlEncoding.Encode(signature))).Error);
    }

    [Theory]
    [InlineData("../../../../etc/passwd")]
    [InlineData("..\\..\\keys\\private.pem")]
    [InlineData("/dev/null")]
    [InlineData("' OR '1'='1")]
    public async Task Kid_path_traversal_and_injection_find_no_key(string kid)
    {
        var header = new JsonObject { ["alg"] = "RS256", ["kid"] = kid };
        var result = await Validate(_idp.Sign(_idp.Claims("alice"), header));
        Assert.Equal(JwtValidationError.UnknownKey, result.Error);
    }

    [Fact]
    public async Task Kid_with_control_characters_is_malformed()
    {
        var header = new JsonObject { ["alg"] = "RS256", ["kid"] = "a\u0000b" };
        Assert.Equal(JwtValidationError.Malformed, (await Validate(_idp.Sign(_idp.Claims("alice"), header))).Error);
    }

    [Fact]
    public async Task Tampered_payload_fails_the_signature()
    {
        var token = _idp.IdToken("alice");
        var parts = token.Split('.');
        var claims = _idp.Claims("admin");
        var tampered = parts[0] + "." + TestIdp.Encode(claims) + "." + parts[2];
        Assert.Equal(JwtValidationError.InvalidSignature, (await Validate(tampered)).Error);
    }

    [Fact]
    public async Task Expired_future_and_missing_time_claims_are_refused()
    {
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        Assert.Equal(JwtValidationError.Expired, (await Validate(_idp.IdToken("a", c => c["exp"] = now - 61))).Error);
        // nbf before exp: a token whose nbf is after its exp is refused on its own (JosePolicyTests).
        Assert.True((await Validate(_idp.IdToken("a", c => { c["exp"] = now - 30; c["nbf"] = now - 90; }))).IsValid, "within the 60 s skew");
        Assert.Equal(JwtValidationError.NotYetValid, (await Validate(_idp.IdToken("a", c => c["nbf"] = now + 120))).Error);
        Assert.Equal(JwtValidationError.IssuedInFuture, (await Validate(_idp.IdToken("a", c => c["iat"] = now + 3600))).Error);
        Assert.Equal(JwtValidationError.MissingClaim, (await Validate(_idp.IdToken("a", c => c.Remove("exp")))).Error);
        Assert.Equal(JwtValidationError.MissingClaim, (await Validate(_idp.IdToken("a", c => c.Remove("sub")))).Error);
        Assert.Equal(JwtValidationError.Malformed, (await Validate(_idp.IdToken("a", c => c["exp"] = "tomorrow"))).Error);
    }

    [Fact]
    public async Task Wrong_issuer_or_audience_is_refused()
    {
        Assert.Equal(JwtValidationError.InvalidIssuer, (await Validate(_idp.IdToken("a", c => c["iss"] = "https://evil.example"))).Error);
        Assert.Equal(JwtValidationError.InvalidIssuer, (await Validate(_idp.IdToken("a", c => c["iss"] = TestIdp.Issuer + "/"))).Error);
        Assert.Equal(JwtValidationError.InvalidAudience, (await Validate(_idp.IdToken("a", c => c["aud"] = "someone-else"))).Error);
        Assert.True((await Validate(_idp.IdToken("a", c => c["aud"] = new JsonArray("x", TestIdp.Audience)))).IsValid);
    }

    [Theory]
    [InlineData(2)]
    [InlineData(4)]
    [InlineData(5)]
    public async Task Tokens_without_exactly_three_segments_are_malformed(int segments)
    {
        var parts = _idp.IdToken("alice").Split('.').ToList();
        while (parts.Count < segments)
        {
            parts.Add(parts[1]);
        }

        var token = string.Join('.', parts.Take(segments));
        Assert.Equal(JwtValidationError.Malformed, (await Validate(token)).Error);
    }

    [Theory]
    [InlineData("=")]
    [InlineData("==")]
    [InlineData(" ")]
    [InlineData("\n")]
    [InlineData("+")]
    public async Task Padding_whitespace_and_non_url_alphabet_are_refused(string trick)
    {
        var parts = _idp.IdToken("alice").Split('.');
        foreach (var i in new[] { 0, 1, 2 })
        {
            var copy = (string[])parts.Clone();
            copy[i] += trick;
            Assert.False((await Validate(string.Join('.', copy))).IsValid, $"segment {i} with '{trick}'");
        }

        Assert.False((await Validate(" " + string.Join('.', parts))).IsValid);
    }

    [Fact]
    public async Task Oversized_and_deeply_nested_inputs_are_refused_without_exceptions()
    {
        var huge = _idp.IdToken("alice", c => c["pad"] = new string('x', 20_000));
        Assert.Equal(JwtValidationError.TooLarge, (await Validate(huge)).Error);

        JsonNode nested = "leaf";
        for (var i = 0; i < 200; i++)
        {
            nested = new JsonArray(nested);
        }

        var deep = _idp.IdToken("alice", c => c["deep"] = nested);
        Assert.Equal(JwtValidationError.Malformed, (await Validate(deep)).Error);

        var bigHeader = new JsonObject { ["alg"] = "RS256", ["kid"] = _idp.RsaKid, ["junk"] = new string('y', 4000) };
        Assert.Equal(JwtValidationError.TooLarge, (await Validate(_idp.Sign(_idp.Claims("a"), bigHeader))).Error);
    }

    [Fact]
    public async Task Duplicate_claims_and_critical_headers_are_refused()
    {
        var payload = Encoding.UTF8.GetBytes($"{{\"iss\":\"{TestIdp.Issuer}\",\"sub\":\"alice\",\"sub\":\"admin\",\"aud\":\"{TestIdp.Audience}\",\"exp\":{DateTimeOffset.UtcNow.ToUnixTimeSeconds() + 60}}}");
        var input = TestIdp.Encode(_idp.Header()) + "." + Base64UrlEncoding.Encode(payload);
        var signature = _idp.Rsa.SignData(Encoding.ASCII.GetBytes(input), HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        Assert.Equal(JwtValidationError.Malformed, (await Validate(input + "." + Base64UrlEncoding.Encode(signature))).Error);

        var crit = _idp.Header();
        crit["crit"] = new JsonArray("exp");
        Assert.Equal(JwtValidationError.Malformed, (await Validate(_idp.Sign(_idp.Claims("a"), crit))).Error);
    }

    [Fact]
    public async Task Der_encoded_ecdsa_signatures_are_refused()
    {
        var token = _idp.Sign(_idp.Claims("alice"), _idp.Header("ES256"));
        var input = token[..token.LastIndexOf('.')];
        var der = _idp.Ec.SignData(Encoding.ASCII.GetBytes(input), HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence);
        Assert.Equal(JwtValidationError.InvalidSignature, (await Validate(input + "." + Base64UrlEncoding.Encode(der))).Error);
    }

    [Fact]
    public async Task Required_type_is_compared_as_a_media_type()
    {
        var options = new JwtValidationOptions { Issuer = TestIdp.Issuer, Audiences = [TestIdp.Audience], RequiredType = "at+jwt" };
        var header = _idp.Header();
        header["typ"] = "application/AT+JWT";
        Assert.True((await Validate(_idp.Sign(_idp.Claims("a"), header), options)).IsValid);
        header["typ"] = "JWT";
        Assert.Equal(JwtValidationError.InvalidType, (await Validate(_idp.Sign(_idp.Claims("a"), header), options)).Error);
    }

    [Fact]
    public void Rsa_keys_under_2048_bits_and_symmetric_keys_are_not_usable()
    {
        using var weak = RSA.Create(1024);
        Assert.Null(PublicJsonWebKey.FromRsa(weak.ExportParameters(false)).ToSecurityKey());
        var set = new Microsoft.IdentityModel.Tokens.JsonWebKeySet("""{"keys":[{"kty":"oct","k":"c2VjcmV0"},{"kty":"RSA","use":"enc","n":"AQAB","e":"AQAB"}]}""");
        Assert.All(set.Keys, key => Assert.False(JwsAlgorithms.IsUsableVerificationKey(key), key.Kty));
        Assert.Equal(2, set.Keys.Count);
    }

    [Fact]
    public async Task A_weak_rsa_key_in_a_jwks_file_verifies_nothing()
    {
        using var weak = RSA.Create(1024);
        var weakJwk = PublicJsonWebKey.FromRsa(weak.ExportParameters(false), "RS256").WithKid("weak");
        var path = Path.Combine(Path.GetTempPath(), "weak-jwks-" + Guid.NewGuid().ToString("N") + ".json");
        await File.WriteAllTextAsync(path, "{\"keys\":[" + ToJson(weakJwk) + "]}");
        try
        {
            using var keys = new JwksConfigurationManager(new JwksSource("weak", null, path, TimeSpan.FromMinutes(1), TimeSpan.FromHours(1)),
                TimeProvider.System, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
            var header = new JsonObject { ["alg"] = "RS256", ["kid"] = "weak" };
            var input = TestIdp.Encode(header) + "." + TestIdp.Encode(_idp.Claims("mallory"));
            var signature = weak.SignData(Encoding.ASCII.GetBytes(input), HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
            var result = await new JwtValidator(_options, keys, TimeProvider.System).ValidateAsync(input + "." + Base64UrlEncoding.Encode(signature), CancellationToken.None);
            Assert.Equal(JwtValidationError.UnknownKey, result.Error);
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static string ToJson(PublicJsonWebKey key)
    {
        using var stream = new MemoryStream();
        using (var writer = new System.Text.Json.Utf8JsonWriter(stream))
        {
            key.WriteTo(writer);
        }

        return Encoding.UTF8.GetString(stream.ToArray());
    }

    [Fact]
    public void Thumbprint_matches_the_rfc7638_example()
    {
        // RFC 7638 §3.1.
        var jwk = new PublicJsonWebKey
        {
            Kty = "RSA",
            E = "AQAB",
            N = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        };
        Assert.Equal("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs", jwk.ComputeThumbprint());
    }
}
