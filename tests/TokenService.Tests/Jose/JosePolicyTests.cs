using System.Security.Claims;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;
using Microsoft.Extensions.Time.Testing;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using TokenService.Dpop;
using TokenService.Jwt;
using TokenService.Tests.Dpop;
using TokenService.Tests.Infrastructure;
using TokenService.Validation;

namespace TokenService.Tests.Jose;

/// <summary>
/// The one JOSE policy (functions/TokenService.Jose) against every caller: <c>core</c> is the token service's
/// <see cref="JwtValidator"/> (ID tokens, SETs, its own access tokens), <c>dpop</c> the RFC 9449 proof checker shared by
/// the token service and the library, <c>library</c> the resource-server library's JwtBearer profile
/// (<see cref="TokenServiceJwtBearerExtensions"/>). Each rule is one theory with a row per caller it applies to.
/// </summary>
public sealed class JosePolicyTests : IDisposable
{
    private const string DpopUri = "https://tokens.test.example/oauth2/token";

    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 12, 6, 12, 0, 0, TimeSpan.Zero));
    private readonly TestIdp _idp;
    private readonly ServiceProvider _library;

    public JosePolicyTests()
    {
        _idp = new TestIdp(_time);
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddAuthentication(JwtBearerDefaults.AuthenticationScheme)
            .AddJwtBearer(o =>
            {
                o.Authority = "https://tokens.test.example";
                o.Audience = "api://orders";
                o.TimeProvider = _time;
            })
            .AddTokenServiceSessionCheck(o =>
            {
                o.PublicOrigin = new Uri("https://orders.test.example");
                o.ClientId = "api";
                o.ClientSecret = "s";
            });
        _library = services.BuildServiceProvider();
    }

    public void Dispose()
    {
        _idp.Dispose();
        _library.Dispose();
    }

    public static TheoryData<string> AllCallers => new() { "core", "dpop", "library" };

    public static TheoryData<string> TokenCallers => new() { "core", "library" };

    private JwtBearerOptions LibraryOptions => _library.GetRequiredService<IOptionsMonitor<JwtBearerOptions>>().Get(JwtBearerDefaults.AuthenticationScheme);

    private async Task<JwtValidationResult> CoreAsync(string token)
    {
        var keys = new StaticKeySource(_idp.RsaJwk.WithKid(_idp.RsaKid), _idp.EcJwk.WithKid(_idp.EcKid));
        return await new JwtValidator(new JwtValidationOptions { Issuer = TestIdp.Issuer, Audiences = [TestIdp.Audience] }, keys, _time)
            .ValidateAsync(token, CancellationToken.None);
    }

    private ValueTask<DpopProofResult> DpopAsync(string proof)
    {
        var options = new DpopOptions { NonceSecret = new string('s', 32) };
        var validator = new DpopProofValidator(
            new InMemoryDpopReplayCache(_time), new HmacDpopNonceService(Options.Create(options), _time), Options.Create(options), _time, NullLogger<DpopProofValidator>.Instance);
        return validator.ValidateAsync(new DpopProofRequest(new StringValues(proof), "POST", DpopUri, null), CancellationToken.None);
    }

    private static JsonWebKey Jwk(string kty, string? alg = null, string? crv = null) => new() { Kty = kty, Alg = alg, Crv = crv };

    // Rule: asymmetric algorithms only, never "none" or a MAC (RFC 8725 §3.1, §3.2; RFC 9449 §11.6).
    [Theory]
    [MemberData(nameof(AllCallers))]
    public async Task Hs256_and_none_are_refused(string caller)
    {
        switch (caller)
        {
            case "core":
                var unsigned = TestIdp.Encode(new System.Text.Json.Nodes.JsonObject { ["alg"] = "none", ["kid"] = _idp.RsaKid })
                    + "." + TestIdp.Encode(_idp.Claims("alice")) + ".c2ln";
                Assert.Equal(JwtValidationError.UnsupportedAlgorithm, (await CoreAsync(unsigned)).Error);
                Assert.False(JwsAlgorithms.KeyAllows(Jwk("RSA"), "HS256"));
                break;
            case "dpop":
                Assert.Equal(DpopProofError.AlgorithmNotAllowed, (await DpopAsync(DpopKey.HmacProof("POST", DpopUri, _time.GetUtcNow()))).Error);
                using (var key = DpopKey.Es256())
                {
                    Assert.Equal(DpopProofError.AlgorithmNotAllowed, (await DpopAsync(key.UnsignedProof("POST", DpopUri, _time.GetUtcNow()))).Error);
                }

                break;
            default:
                var parameters = LibraryOptions.TokenValidationParameters;
                Assert.False(parameters.AlgorithmValidator("HS256", Jwk("RSA"), null, parameters));
                Assert.False(parameters.AlgorithmValidator("none", Jwk("RSA"), null, parameters));
                break;
        }
    }

    // Rule: a JWK that names its alg allows that alg alone, and only if it fits the key's type (RFC 7517 §4.4, RFC 8725 §3.1).
    [Theory]
    [MemberData(nameof(AllCallers))]
    public async Task A_key_that_names_its_algorithm_allows_no_other(string caller)
    {
        switch (caller)
        {
            case "core":
                var ps256 = _idp.Sign(_idp.Claims("alice"), _idp.Header("PS256")); // the IdP's RSA JWK says RS256
                Assert.Equal(JwtValidationError.UnsupportedAlgorithm, (await CoreAsync(ps256)).Error);
                Assert.True((await CoreAsync(_idp.Sign(_idp.Claims("alice"), _idp.Header("RS256")))).IsValid);
                break;
            case "dpop":
                // Behaviour change: the proof checker used to ignore the jwk's own alg.
                using (var key = DpopKey.Es256())
                {
                    var saysEs384 = new Dictionary<string, object>(key.PublicJwk) { ["alg"] = "ES384" };
                    Assert.Equal(DpopProofError.InvalidKey, (await DpopAsync(key.Proof("POST", DpopUri, _time.GetUtcNow(), jwk: saysEs384))).Error);
                    var saysEs256 = new Dictionary<string, object>(key.PublicJwk) { ["alg"] = "ES256" };
                    Assert.True((await DpopAsync(key.Proof("POST", DpopUri, _time.GetUtcNow(), jwk: saysEs256))).IsValid);
                }

                break;
            default:
                var parameters = LibraryOptions.TokenValidationParameters;
                Assert.False(parameters.AlgorithmValidator("PS256", Jwk("RSA", alg: "RS256"), null, parameters));
                Assert.True(parameters.AlgorithmValidator("RS256", Jwk("RSA", alg: "RS256"), null, parameters));

                // Behaviour change: the library used to take a JWK's alg without looking at its type.
                Assert.False(parameters.AlgorithmValidator("RS256", Jwk("EC", alg: "RS256", crv: "P-256"), null, parameters));
                break;
        }
    }

    // Rule: an EC key allows the one ES* of its curve (RFC 7518 §3.4).
    [Theory]
    [MemberData(nameof(AllCallers))]
    public async Task An_ec_key_allows_only_the_algorithm_of_its_curve(string caller)
    {
        switch (caller)
        {
            case "core":
                Assert.True(JwsAlgorithms.KeyAllows(Jwk("EC", crv: "P-256"), "ES256"));
                Assert.False(JwsAlgorithms.KeyAllows(Jwk("EC", crv: "P-256"), "ES384"));
                Assert.False(JwsAlgorithms.KeyAllows(Jwk("EC"), "RS256")); // no curve: nothing, not "RS256 because no curve matches none"
                Assert.True((await CoreAsync(_idp.Sign(_idp.Claims("alice"), _idp.Header("ES256")))).IsValid);
                break;
            case "dpop":
                using (var key = DpopKey.Es256())
                {
                    var es384Header = key.HandSignedProof("POST", DpopUri, _time.GetUtcNow(), header: h => h["alg"] = "ES384");
                    Assert.Equal(DpopProofError.InvalidKey, (await DpopAsync(es384Header)).Error);
                }

                break;
            default:
                var parameters = LibraryOptions.TokenValidationParameters.Clone();
                parameters.ValidAlgorithms = JwsAlgorithms.All;
                Assert.True(parameters.AlgorithmValidator("ES256", Jwk("EC", crv: "P-256"), null, parameters));
                Assert.False(parameters.AlgorithmValidator("ES384", Jwk("EC", crv: "P-256"), null, parameters));
                using (var ec = System.Security.Cryptography.ECDsa.Create(System.Security.Cryptography.ECCurve.NamedCurves.nistP384))
                {
                    Assert.True(parameters.AlgorithmValidator("ES384", new ECDsaSecurityKey(ec), null, parameters));
                    Assert.False(parameters.AlgorithmValidator("ES256", new ECDsaSecurityKey(ec), null, parameters));
                }

                break;
        }
    }

    // Rule: a token whose nbf is after its exp is never valid, even inside both clock skews (RFC 7519 §4.1.4, §4.1.5).
    // DPoP proofs are held to their iat window instead (RFC 9449 §4.3 item 11), so the rule has no dpop row.
    [Theory]
    [MemberData(nameof(TokenCallers))]
    public async Task Nbf_after_exp_is_refused_even_within_the_clock_skew(string caller)
    {
        var now = _time.GetUtcNow();
        switch (caller)
        {
            case "core":
                // Behaviour change: the core used to accept it while both nbf and exp were within the 60 s skew.
                var claims = _idp.Claims("alice");
                claims["nbf"] = now.AddSeconds(30).ToUnixTimeSeconds();
                claims["exp"] = now.AddSeconds(20).ToUnixTimeSeconds();
                var result = await CoreAsync(_idp.Sign(claims));
                Assert.Equal(JwtValidationError.InvalidLifetime, result.Error);
                Assert.Equal("The token's nbf is after its exp.", result.Description);
                break;
            default:
                var parameters = LibraryOptions.TokenValidationParameters;
                Assert.Throws<SecurityTokenInvalidLifetimeException>(
                    () => parameters.LifetimeValidator(now.AddSeconds(30).UtcDateTime, now.AddSeconds(20).UtcDateTime, null, parameters));
                Assert.True(parameters.LifetimeValidator(now.AddSeconds(-10).UtcDateTime, now.AddSeconds(20).UtcDateTime, null, parameters));
                break;
        }
    }

    // Rule: every segment of a compact JWS is strict base64url, without padding (RFC 7515 §2, §7.1): the signature with
    // its "==" padding decodes to the same octets in IdentityModel's lenient decoder, so it is a second text of the same
    // token.
    [Theory]
    [MemberData(nameof(AllCallers))]
    public async Task A_segment_that_is_not_strict_base64url_is_refused(string caller)
    {
        switch (caller)
        {
            case "core":
                var token = _idp.Sign(_idp.Claims("alice"), _idp.Header("ES256"));
                Assert.True((await CoreAsync(token)).IsValid);
                Assert.Equal(JwtValidationError.Malformed, (await CoreAsync(WithPaddedSignature(token))).Error);
                break;
            case "dpop":
                // Behaviour change: the proof checker decoded with IdentityModel's lenient Base64UrlEncoder.
                using (var key = DpopKey.Es256())
                {
                    var proof = key.Proof("POST", DpopUri, _time.GetUtcNow());
                    var loose = WithPaddedSignature(proof);
                    Assert.Equal(Base64UrlEncoder.DecodeBytes(proof[(proof.LastIndexOf('.') + 1)..]), Base64UrlEncoder.DecodeBytes(loose[(loose.LastIndexOf('.') + 1)..]));
                    var refused = await DpopAsync(loose);
                    Assert.Equal(DpopProofError.Malformed, refused.Error);
                    Assert.Equal("The DPoP proof is not strict base64url.", refused.Description);
                    Assert.True((await DpopAsync(proof)).IsValid);

                    // The jwk's members too: a padded x is the same point, and would be another RFC 7638 thumbprint.
                    var paddedX = new Dictionary<string, object>(key.PublicJwk) { ["x"] = (string)key.PublicJwk["x"] + "=" };
                    Assert.Equal(DpopProofError.Malformed, (await DpopAsync(key.Proof("POST", DpopUri, _time.GetUtcNow(), jwk: paddedX))).Error);
                }

                break;
            default:
                // Behaviour change: the library took whatever IdentityModel decoded. The check runs in OnTokenValidated,
                // before the DPoP binding and the session check, so the refusal is the malformed token itself.
                var options = LibraryOptions;
                var context = new TokenValidatedContext(
                    new DefaultHttpContext(), new AuthenticationScheme(JwtBearerDefaults.AuthenticationScheme, null, typeof(JwtBearerHandler)), options)
                {
                    Principal = new ClaimsPrincipal(new ClaimsIdentity("test")),
                    SecurityToken = new JsonWebToken(WithPaddedSignature(_idp.Sign(_idp.Claims("alice"), _idp.Header("ES256")))),
                };
                await options.Events.TokenValidated(context);
                var failure = Assert.IsType<SecurityTokenMalformedException>(context.Result?.Failure);
                Assert.Equal("The token is not strict base64url.", failure.Message);
                break;
        }
    }

    [Theory]
    [InlineData("e30.e30.c2ln", true)]
    [InlineData("e30.e30.", true)]
    [InlineData("e30.e30", false)]
    [InlineData("e30.e30.c2ln.x", false)]
    [InlineData("e30.e31.c2ln", false)]
    [InlineData("e30=.e30.c2ln", false)]
    [InlineData("e30.e30.c2ln ", false)]
    public void A_compact_jws_is_three_strict_segments(string compact, bool strict) =>
        Assert.Equal(strict, Base64UrlEncoding.IsStrictCompactJws(compact));

    [Fact]
    public void The_allow_lists_are_the_policys()
    {
        Assert.Same(JwsAlgorithms.All, DpopProofValidator.SupportedAlgorithms);
        Assert.Equal(["ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "RS256", "RS384", "RS512"], DpopProofValidator.SupportedAlgorithms);
        Assert.Equal(JwsAlgorithms.Signing, LibraryOptions.TokenValidationParameters.ValidAlgorithms);
        Assert.Equal(["RS256", "PS256", "ES256"], JwsAlgorithms.Signing);
    }

    /// <summary>The token with its ES256 signature (64 octets, 86 characters) padded as base64 would pad it.</summary>
    private static string WithPaddedSignature(string compact)
    {
        Assert.Equal(86, compact.Length - compact.LastIndexOf('.') - 1);
        return compact + "==";
    }
}
