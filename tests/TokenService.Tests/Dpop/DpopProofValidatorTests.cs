using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;
using Microsoft.Extensions.Time.Testing;
using Microsoft.IdentityModel.Tokens;
using TokenService.Dpop;

namespace TokenService.Tests.Dpop;

/// <summary>RFC 9449 §4.3 checks of the proof validator, one refusal reason at a time, on a fake clock.</summary>
public sealed class DpopProofValidatorTests : IDisposable
{
    private const string Uri = "https://tokens.test.example/oauth2/token";

    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 11, 30, 12, 0, 0, TimeSpan.Zero));
    private readonly DpopKey _key = DpopKey.Es256();
    private readonly DpopOptions _options = new() { NonceSecret = new string('s', 32) };

    private DpopProofValidator CreateValidator(IDpopReplayCache? cache = null) =>
        new(cache ?? new InMemoryDpopReplayCache(_time), new HmacDpopNonceService(Options.Create(_options), _time), Options.Create(_options), _time, NullLogger<DpopProofValidator>.Instance);

    private ValueTask<DpopProofResult> ValidateAsync(StringValues proofs, string method = "POST", string uri = Uri, string? accessToken = null, DpopProofValidator? validator = null) =>
        (validator ?? CreateValidator()).ValidateAsync(new DpopProofRequest(proofs, method, uri, accessToken), CancellationToken.None);

    private DateTimeOffset Now => _time.GetUtcNow();

    public void Dispose() => _key.Dispose();

    [Theory]
    [InlineData("ES256")]
    [InlineData("RS256")]
    [InlineData("PS256")]
    public async Task A_well_formed_proof_is_accepted_with_the_rfc_7638_thumbprint_of_its_key(string alg)
    {
        using var key = alg == "ES256" ? DpopKey.Es256() : DpopKey.Rsa(alg);
        var result = await ValidateAsync(key.Proof("POST", Uri, Now));
        Assert.True(result.IsValid, result.Description);
        Assert.Equal(key.Thumbprint, result.Thumbprint);
    }

    [Fact]
    public async Task No_header_is_absent_not_invalid()
    {
        var result = await ValidateAsync(StringValues.Empty);
        Assert.True(result.IsAbsent);
        Assert.False(result.IsValid);
    }

    [Fact]
    public async Task Two_dpop_headers_are_refused()
    {
        var result = await ValidateAsync(new StringValues([_key.Proof("POST", Uri, Now), _key.Proof("POST", Uri, Now)]));
        Assert.Equal(DpopProofError.Malformed, result.Error);
        Assert.Equal("invalid_dpop_proof", result.ErrorCode);
    }

    [Fact]
    public async Task The_same_proof_is_accepted_once()
    {
        var validator = CreateValidator();
        var proof = _key.Proof("POST", Uri, Now);
        Assert.True((await ValidateAsync(proof, validator: validator)).IsValid);
        Assert.Equal(DpopProofError.Replayed, (await ValidateAsync(proof, validator: validator)).Error);
    }

    [Fact]
    public async Task A_jti_is_scoped_to_its_key_so_another_client_cannot_spend_it()
    {
        var validator = CreateValidator();
        using var other = DpopKey.Es256();
        Assert.True((await ValidateAsync(_key.Proof("POST", Uri, Now, jti: "shared-jti"), validator: validator)).IsValid);
        Assert.True((await ValidateAsync(other.Proof("POST", Uri, Now, jti: "shared-jti"), validator: validator)).IsValid);
    }

    [Fact]
    public async Task A_refused_proof_takes_no_place_in_the_replay_cache()
    {
        var validator = CreateValidator();
        Assert.Equal(DpopProofError.MethodMismatch, (await ValidateAsync(_key.Proof("GET", Uri, Now, jti: "j1"), validator: validator)).Error);
        Assert.True((await ValidateAsync(_key.Proof("POST", Uri, Now, jti: "j1"), validator: validator)).IsValid);
    }

    [Theory]
    [InlineData("GET", Uri, DpopProofError.MethodMismatch)]
    [InlineData("post", Uri, DpopProofError.MethodMismatch)]
    [InlineData("POST", "https://tokens.test.example/oauth2/revoke", DpopProofError.UriMismatch)]
    [InlineData("POST", "https://evil.example/oauth2/token", DpopProofError.UriMismatch)]
    [InlineData("POST", "http://tokens.test.example/oauth2/token", DpopProofError.UriMismatch)]
    [InlineData("POST", "https://tokens.test.example:8443/oauth2/token", DpopProofError.UriMismatch)]
    [InlineData("POST", "https://user@tokens.test.example/oauth2/token", DpopProofError.UriMismatch)]
    [InlineData("POST", "/oauth2/token", DpopProofError.UriMismatch)]
    public async Task A_proof_for_another_method_or_uri_is_refused(string htm, string htu, DpopProofError expected) =>
        Assert.Equal(expected, (await ValidateAsync(_key.Proof(htm, htu, Now))).Error);

    [Theory]
    [InlineData("HTTPS://TOKENS.Test.Example/oauth2/token")]
    [InlineData("https://tokens.test.example:443/oauth2/token")]
    [InlineData("https://tokens.test.example/oauth2/%74oken")]
    [InlineData("https://tokens.test.example/x/../oauth2/./token")]
    [InlineData("https://tokens.test.example/oauth2/token?query=1")]
    [InlineData("https://tokens.test.example/oauth2/token#fragment")]
    public async Task The_htu_is_compared_after_rfc_3986_normalisation(string htu) =>
        Assert.True((await ValidateAsync(_key.Proof("POST", htu, Now))).IsValid);

    [Theory]
    [InlineData(-61)]
    [InlineData(-3600)]
    [InlineData(6)]
    [InlineData(86400)]
    public async Task A_stale_or_future_iat_is_refused(int offsetSeconds) =>
        Assert.Equal(DpopProofError.Stale, (await ValidateAsync(_key.Proof("POST", Uri, Now.AddSeconds(offsetSeconds)))).Error);

    [Theory]
    [InlineData(-59)]
    [InlineData(5)]
    public async Task An_iat_within_the_window_and_skew_is_accepted(int offsetSeconds) =>
        Assert.True((await ValidateAsync(_key.Proof("POST", Uri, Now.AddSeconds(offsetSeconds)))).IsValid);

    [Fact]
    public async Task Alg_none_is_refused() =>
        Assert.Equal(DpopProofError.AlgorithmNotAllowed, (await ValidateAsync(_key.UnsignedProof("POST", Uri, Now))).Error);

    [Fact]
    public async Task An_hmac_proof_is_refused() =>
        Assert.Equal(DpopProofError.AlgorithmNotAllowed, (await ValidateAsync(DpopKey.HmacProof("POST", Uri, Now))).Error);

    [Fact]
    public async Task Private_key_material_in_the_jwk_header_is_refused() =>
        Assert.Equal(DpopProofError.InvalidKey, (await ValidateAsync(_key.Proof("POST", Uri, Now, jwk: _key.JwkWithPrivateMembers()))).Error);

    [Fact]
    public async Task A_jwk_of_another_key_type_or_curve_than_the_alg_is_refused()
    {
        using var rsa = DpopKey.Rsa();
        Assert.Equal(DpopProofError.InvalidKey, (await ValidateAsync(_key.Proof("POST", Uri, Now, jwk: rsa.PublicJwk))).Error);
        var p384 = new Dictionary<string, object>(_key.PublicJwk) { ["crv"] = "P-384" };
        Assert.Equal(DpopProofError.InvalidKey, (await ValidateAsync(_key.Proof("POST", Uri, Now, jwk: p384))).Error);
    }

    [Fact]
    public async Task A_proof_signed_by_another_key_than_its_jwk_is_refused()
    {
        using var attacker = DpopKey.Es256();
        Assert.Equal(DpopProofError.InvalidSignature, (await ValidateAsync(attacker.Proof("POST", Uri, Now, jwk: _key.PublicJwk))).Error);
    }

    [Fact]
    public async Task Cached_verifiers_never_let_one_key_sign_for_another()
    {
        // Both keys' verifiers are cached first (the cache is keyed by the full public key's thumbprint, not by a kid
        // the proof may choose); then each signs a proof that names the other's key, with the same kid as well.
        var validator = CreateValidator();
        using var attacker = DpopKey.Es256();
        Assert.True((await ValidateAsync(_key.Proof("POST", Uri, Now), validator: validator)).IsValid);
        Assert.True((await ValidateAsync(attacker.Proof("POST", Uri, Now), validator: validator)).IsValid);

        var victimWithKid = new Dictionary<string, object>(_key.PublicJwk) { ["kid"] = "k" };
        var attackerWithKid = new Dictionary<string, object>(attacker.PublicJwk) { ["kid"] = "k" };
        Assert.True((await ValidateAsync(attacker.Proof("POST", Uri, Now, jwk: attackerWithKid), validator: validator)).IsValid);
        Assert.Equal(DpopProofError.InvalidSignature, (await ValidateAsync(attacker.Proof("POST", Uri, Now, jwk: victimWithKid), validator: validator)).Error);
        Assert.Equal(DpopProofError.InvalidSignature, (await ValidateAsync(attacker.Proof("POST", Uri, Now, jwk: _key.PublicJwk), validator: validator)).Error);
        Assert.Equal(DpopProofError.InvalidSignature, (await ValidateAsync(_key.Proof("POST", Uri, Now, jwk: attacker.PublicJwk), validator: validator)).Error);
    }

    [Fact]
    public async Task A_hand_signed_proof_of_a_2048_bit_key_is_accepted()
    {
        // The control for the refusals below: the proof they build is accepted when nothing is wrong with its key.
        using var rsa = DpopKey.Rsa("RS256", 2048);
        var result = await ValidateAsync(rsa.HandSignedProof("POST", Uri, Now));
        Assert.True(result.IsValid, result.Description);
    }

    [Fact]
    public async Task A_1024_bit_rsa_key_with_its_modulus_zero_padded_to_256_octets_is_refused()
    {
        using var weak = DpopKey.Rsa("RS256", 1024);
        Assert.Equal(DpopProofError.InvalidKey, (await ValidateAsync(weak.HandSignedProof("POST", Uri, Now, jwk: weak.ZeroPaddedRsaJwk(nBytes: 256)))).Error);
        Assert.Equal(DpopProofError.InvalidKey, (await ValidateAsync(weak.HandSignedProof("POST", Uri, Now))).Error);
    }

    [Theory]
    [InlineData(257, 0)]
    [InlineData(0, 4)]
    public async Task Leading_zero_octets_in_n_or_e_are_refused(int nBytes, int eBytes)
    {
        // The same key written with leading zeros would also have another RFC 7638 thumbprint (another cnf.jkt).
        using var rsa = DpopKey.Rsa("RS256", 2048);
        Assert.Equal(DpopProofError.InvalidKey, (await ValidateAsync(rsa.HandSignedProof("POST", Uri, Now, jwk: rsa.ZeroPaddedRsaJwk(nBytes, eBytes)))).Error);
    }

    [Fact]
    public async Task An_rsa_exponent_of_one_is_refused_so_a_digest_is_not_its_own_signature() =>
        Assert.Equal(DpopProofError.InvalidKey, (await ValidateAsync(DpopKey.ExponentOneProof("POST", Uri, Now))).Error);

    [Theory]
    [InlineData("Ag")] // 2: even
    [InlineData("AQAA")] // 65536: even
    [InlineData("")]
    public async Task An_even_or_empty_rsa_exponent_is_refused(string e)
    {
        using var rsa = DpopKey.Rsa("RS256", 2048);
        var jwk = new Dictionary<string, object>(rsa.PublicJwk) { ["e"] = e };
        Assert.Equal(DpopProofError.InvalidKey, (await ValidateAsync(rsa.HandSignedProof("POST", Uri, Now, jwk: jwk))).Error);
    }

    [Theory]
    [InlineData("ES256")]
    [InlineData("RS256")]
    public async Task A_proof_header_with_crit_is_refused(string alg)
    {
        // RFC 7515 §4.1.11: extensions named in crit must be understood or the JWS rejected; we understand none.
        using var key = alg == "ES256" ? DpopKey.Es256() : DpopKey.Rsa(alg, 2048);
        var proof = key.HandSignedProof("POST", Uri, Now, header: h =>
        {
            h["crit"] = new System.Text.Json.Nodes.JsonArray("exp");
            h["exp"] = Now.ToUnixTimeSeconds();
        });
        Assert.Equal(DpopProofError.Malformed, (await ValidateAsync(proof)).Error);
        Assert.Equal(DpopProofError.Malformed, (await ValidateAsync(key.HandSignedProof("POST", Uri, Now, header: h => h["crit"] = new System.Text.Json.Nodes.JsonArray()))).Error);
    }

    [Fact]
    public async Task A_point_off_the_curve_is_refused_without_throwing()
    {
        var offCurve = new Dictionary<string, object>(_key.PublicJwk) { ["y"] = Base64UrlEncoder.Encode(new byte[32]) };
        Assert.False((await ValidateAsync(_key.Proof("POST", Uri, Now, jwk: offCurve))).IsValid);
        var shortX = new Dictionary<string, object>(_key.PublicJwk) { ["x"] = Base64UrlEncoder.Encode(new byte[31]) };
        Assert.False((await ValidateAsync(_key.Proof("POST", Uri, Now, jwk: shortX))).IsValid);
    }

    [Theory]
    [InlineData("JWT")]
    [InlineData("at+jwt")]
    public async Task Another_typ_is_refused(string typ) =>
        Assert.Equal(DpopProofError.WrongType, (await ValidateAsync(_key.Proof("POST", Uri, Now, typ: typ))).Error);

    [Theory]
    [InlineData("jti")]
    [InlineData("htm")]
    [InlineData("htu")]
    [InlineData("iat")]
    public async Task A_proof_without_a_required_claim_is_refused(string claim) =>
        Assert.Equal(DpopProofError.MissingClaims, (await ValidateAsync(_key.Proof("POST", Uri, Now, claims: c => c.Remove(claim)))).Error);

    [Fact]
    public async Task An_oversized_jti_is_refused() =>
        Assert.Equal(DpopProofError.MissingClaims, (await ValidateAsync(_key.Proof("POST", Uri, Now, jti: new string('j', 257)))).Error);

    [Fact]
    public async Task Ath_must_be_the_hash_of_the_presented_access_token()
    {
        Assert.True((await ValidateAsync(_key.Proof("GET", Uri, Now, accessToken: "token-a"), "GET", accessToken: "token-a")).IsValid);
        Assert.Equal(DpopProofError.AccessTokenHashMismatch, (await ValidateAsync(_key.Proof("GET", Uri, Now, accessToken: "token-a"), "GET", accessToken: "token-b")).Error);
        Assert.Equal(DpopProofError.AccessTokenHashMismatch, (await ValidateAsync(_key.Proof("GET", Uri, Now), "GET", accessToken: "token-a")).Error);
    }

    [Fact]
    public async Task With_nonces_required_a_missing_forged_or_stale_nonce_is_use_dpop_nonce()
    {
        _options.RequireNonce = true;
        var nonces = new HmacDpopNonceService(Options.Create(_options), _time);
        var validator = CreateValidator();

        var missing = await ValidateAsync(_key.Proof("POST", Uri, Now), validator: validator);
        Assert.Equal(DpopProofError.NonceRequired, missing.Error);
        Assert.Equal("use_dpop_nonce", missing.ErrorCode);
        Assert.Equal(DpopProofError.NonceRequired, (await ValidateAsync(_key.Proof("POST", Uri, Now, nonce: new string('A', 32)), validator: validator)).Error);

        var nonce = nonces.Issue();
        Assert.True((await ValidateAsync(_key.Proof("POST", Uri, Now, nonce: nonce), validator: validator)).IsValid);

        _time.Advance(_options.NonceLifetime + TimeSpan.FromSeconds(1));
        Assert.Equal(DpopProofError.NonceRequired, (await ValidateAsync(_key.Proof("POST", Uri, Now, nonce: nonce), validator: validator)).Error);
    }

    [Fact]
    public void A_nonce_is_accepted_by_every_instance_with_the_same_secret_and_no_other()
    {
        var first = new HmacDpopNonceService(Options.Create(_options), _time);
        var second = new HmacDpopNonceService(Options.Create(new DpopOptions { NonceSecret = _options.NonceSecret }), _time);
        var stranger = new HmacDpopNonceService(Options.Create(new DpopOptions { NonceSecret = new string('t', 32) }), _time);
        var nonce = first.Issue();
        Assert.Matches("^[A-Za-z0-9_-]{32}$", nonce);
        Assert.True(second.IsValid(nonce));
        Assert.False(stranger.IsValid(nonce));

        // A tampered time is caught by the tag.
        var bytes = Base64UrlEncoder.DecodeBytes(nonce);
        bytes[7] ^= 1;
        Assert.False(second.IsValid(Base64UrlEncoder.Encode(bytes)));

        // Nonces of the right length that are not base64url are refused, not thrown on (Base64Url.TryDecodeFromChars
        // throws FormatException for them).
        foreach (var crafted in (string[])[new string('!', 32), nonce[..31] + "=", nonce[..31] + "\u00e9", new string(' ', 32)])
        {
            Assert.False(first.IsValid(crafted));
        }
    }

    [Theory]
    [InlineData("")]
    [InlineData("x")]
    [InlineData("a.b")]
    [InlineData("a.b.c")]
    [InlineData("...")]
    [InlineData("eyJ0eXAiOiJkcG9wK2p3dCJ9.e30.")]
    [InlineData("eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7fX0.e30.AAAA")]
    [InlineData("eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjpbXX0.e30.AAAA")]
    [InlineData("eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwiY3J2IjoiUC0yNTYiLCJ4IjoiQUFBQSIsInkiOiJBQUFBIn19.e30.AAAA")]
    [InlineData("%%%.%%%.%%%")]
    public async Task Malformed_proofs_are_refused_without_throwing(string proof)
    {
        var result = await ValidateAsync(proof);
        Assert.False(result.IsValid);
        Assert.False(result.IsAbsent && proof.Length > 0);
        Assert.Equal("invalid_dpop_proof", result.ErrorCode);
    }

    [Fact]
    public async Task An_oversized_proof_is_refused_before_parsing()
    {
        var huge = _key.Proof("POST", Uri, Now, claims: c => c["pad"] = new string('p', DpopProofValidator.MaxProofLength));
        Assert.Equal(DpopProofError.TooLarge, (await ValidateAsync(huge)).Error);
    }

    [Fact]
    public async Task Random_bytes_never_throw()
    {
        var random = new Random(9449);
        var validator = CreateValidator();
        for (var i = 0; i < 500; i++)
        {
            var parts = Enumerable.Range(0, 3).Select(_ =>
            {
                var bytes = new byte[random.Next(0, 200)];
                random.NextBytes(bytes);
                return random.Next(3) == 0 ? Encoding.Latin1.GetString(bytes) : Base64UrlEncoder.Encode(bytes);
            });
            var result = await ValidateAsync(string.Join('.', parts), validator: validator);
            Assert.False(result.IsValid);
        }
    }

    [Fact]
    public async Task Expired_entries_leave_the_in_memory_cache_and_a_stale_proof_is_refused_anyway()
    {
        var cache = new InMemoryDpopReplayCache(_time);
        var validator = CreateValidator(cache);
        var proof = _key.Proof("POST", Uri, Now);
        Assert.True((await ValidateAsync(proof, validator: validator)).IsValid);
        _time.Advance(_options.ProofLifetime + TimeSpan.FromSeconds(1));
        Assert.Equal(1, cache.PurgeExpired(_time.GetUtcNow()));
        Assert.Equal(DpopProofError.Stale, (await ValidateAsync(proof, validator: validator)).Error);
    }

    [Fact]
    public async Task A_replay_cache_outage_propagates_as_dependency_unavailable()
    {
        var validator = CreateValidator(new UnavailableReplayCache());
        await Assert.ThrowsAsync<DependencyUnavailableException>(async () => await ValidateAsync(_key.Proof("POST", Uri, Now), validator: validator));
    }

    private sealed class UnavailableReplayCache : IDpopReplayCache
    {
        public ValueTask<bool> TryAddAsync(string key, DateTimeOffset expiresAt, CancellationToken cancellationToken) =>
            throw new DependencyUnavailableException("storage", "down");
    }
}
