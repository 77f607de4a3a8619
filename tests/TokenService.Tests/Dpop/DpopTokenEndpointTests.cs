using System.Net;
using System.Text.Json;
using Microsoft.IdentityModel.JsonWebTokens;
using TokenService.Tests.Infrastructure;
using static TokenService.Tests.Dpop.DpopHostFixture;
using static TokenService.Tests.Infrastructure.TokenServiceTestHost;

namespace TokenService.Tests.Dpop;

public sealed class DpopTokenEndpointTests(DpopHostFixture fixture) : DpopTokenEndpointTests<DpopHostFixture>(fixture);

/// <summary>The same attacks against the Functions app (its HTTP functions invoked in-process).</summary>
public sealed class DpopTokenEndpointTestsOnFunctions(DpopFunctionsHostFixture fixture) : DpopTokenEndpointTests<DpopFunctionsHostFixture>(fixture);

/// <summary>The same tests against the published app under a real Functions host (<see cref="RealFunctionsHostPool"/>).</summary>
[RealFunctionsHostTier]
[Collection(RealFunctionsHostCollection.Name)]
public sealed class DpopTokenEndpointTestsOnRealHost(DpopRealFunctionsHostFixture fixture) : DpopTokenEndpointTests<DpopRealFunctionsHostFixture>(fixture);

/// <summary>
/// RFC 9449 at the token endpoint and on introspection: bound tokens and sessions, and every attack RFC 9449 §11 describes refused
/// with the RFC's error and no state change, which each test proves by refreshing with the untouched token afterwards.
/// </summary>
public abstract class DpopTokenEndpointTests<TFixture>(TFixture fixture) : IClassFixture<TFixture>
    where TFixture : DpopHostFixture
{
    private readonly DpopKey _key = DpopKey.Es256();

    private TFixture F => fixture;

    private string Proof(DpopKey? key = null) => (key ?? _key).Proof("POST", TokenUri, F.Now);

    private static string User() => "dpop-" + Guid.NewGuid().ToString("N");

    /// <summary>Opens a session bound to <see cref="_key"/> and returns its token response.</summary>
    private async Task<JsonElement> BoundLoginAsync(string? audience = null)
    {
        using var response = await F.ExchangeAsync(Proof(), User(), audience: audience);
        var json = await JsonAsync(response);
        Assert.True(response.StatusCode == HttpStatusCode.OK, json.ToString());
        return json;
    }

    /// <summary>The untouched refresh token still refreshes with a proof of the session's key: nothing was changed.</summary>
    private async Task AssertStillRefreshesAsync(string refreshToken)
    {
        using var response = await F.RefreshAsync(refreshToken, Proof());
        var json = await JsonAsync(response);
        Assert.True(response.StatusCode == HttpStatusCode.OK, "The refresh token should be untouched: " + json);
        Assert.Equal("DPoP", json.GetProperty("token_type").GetString());
    }

    [Fact]
    public async Task Exchange_and_refresh_with_a_proof_issue_tokens_bound_to_its_key()
    {
        var login = await BoundLoginAsync();
        Assert.Equal("DPoP", login.GetProperty("token_type").GetString());
        var access = new JsonWebToken(login.GetProperty("access_token").GetString());
        Assert.Equal(_key.Thumbprint, access.GetPayloadValue<JsonElement>("cnf").GetProperty("jkt").GetString());

        using var refresh = await F.RefreshAsync(login.GetProperty("refresh_token").GetString()!, Proof());
        var refreshed = await JsonAsync(refresh);
        Assert.Equal(HttpStatusCode.OK, refresh.StatusCode);
        Assert.Equal("DPoP", refreshed.GetProperty("token_type").GetString());
        Assert.Equal(_key.Thumbprint, new JsonWebToken(refreshed.GetProperty("access_token").GetString()).GetPayloadValue<JsonElement>("cnf").GetProperty("jkt").GetString());
    }

    [Fact]
    public async Task Without_a_proof_tokens_stay_bearer_tokens_without_cnf()
    {
        using var response = await F.ExchangeAsync(null, User());
        var json = await JsonAsync(response);
        Assert.Equal("Bearer", json.GetProperty("token_type").GetString());
        Assert.False(new JsonWebToken(json.GetProperty("access_token").GetString()).TryGetPayloadValue<JsonElement>("cnf", out _));
    }

    [Fact]
    public async Task Introspection_returns_cnf_and_token_type_dpop_for_a_bound_token()
    {
        var login = await BoundLoginAsync();
        using var response = await F.Host.IntrospectAsync(login.GetProperty("access_token").GetString()!);
        var json = await JsonAsync(response);
        Assert.True(json.GetProperty("active").GetBoolean());
        Assert.Equal("DPoP", json.GetProperty("token_type").GetString());
        Assert.Equal(_key.Thumbprint, json.GetProperty("cnf").GetProperty("jkt").GetString());
    }

    [Fact]
    public async Task Discovery_advertises_the_proof_algorithms()
    {
        using var response = await F.Host.Client.GetAsync("/.well-known/openid-configuration");
        var algs = (await JsonAsync(response)).GetProperty("dpop_signing_alg_values_supported").EnumerateArray().Select(a => a.GetString()).ToList();
        Assert.Contains("ES256", algs);
        Assert.Contains("RS256", algs);
        Assert.Contains("PS256", algs);
        Assert.DoesNotContain("none", algs);
        Assert.DoesNotContain(algs, a => a!.StartsWith("HS", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Refresh_of_a_bound_session_without_a_proof_is_invalid_grant_and_changes_nothing()
    {
        var refreshToken = (await BoundLoginAsync()).GetProperty("refresh_token").GetString()!;
        using var response = await F.RefreshAsync(refreshToken, proof: null);
        await AssertOAuthErrorAsync(response, "invalid_grant");
        await AssertStillRefreshesAsync(refreshToken);
    }

    [Fact]
    public async Task Refresh_of_a_bound_session_with_another_key_is_invalid_grant_and_changes_nothing()
    {
        var refreshToken = (await BoundLoginAsync()).GetProperty("refresh_token").GetString()!;
        using var attacker = DpopKey.Es256();
        using var response = await F.RefreshAsync(refreshToken, Proof(attacker));
        await AssertOAuthErrorAsync(response, "invalid_grant");
        await AssertStillRefreshesAsync(refreshToken);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_rotated_refresh_token_of_a_bound_session_is_reuse_whatever_the_proof_and_ends_the_session(bool attackerProof)
    {
        var login = await BoundLoginAsync();
        var first = login.GetProperty("refresh_token").GetString()!;
        using var rotate = await F.RefreshAsync(first, Proof());
        var current = (await JsonAsync(rotate)).GetProperty("refresh_token").GetString()!;

        // RFC 9700 §4.14.2 runs before the binding check: a superseded token ends the session, with or without a proof.
        using var attacker = DpopKey.Es256();
        using var stolen = await F.RefreshAsync(first, attackerProof ? Proof(attacker) : null);
        await AssertOAuthErrorAsync(stolen, "invalid_grant");
        using var owner = await F.RefreshAsync(current, Proof());
        await AssertOAuthErrorAsync(owner, "invalid_grant");
    }

    [Fact]
    public async Task A_replayed_proof_is_invalid_dpop_proof_and_changes_nothing()
    {
        var refreshToken = (await BoundLoginAsync()).GetProperty("refresh_token").GetString()!;
        var proof = Proof();
        using var first = await F.RefreshAsync(refreshToken, proof);
        var rotated = (await JsonAsync(first)).GetProperty("refresh_token").GetString()!;

        using var replay = await F.RefreshAsync(rotated, proof);
        await AssertOAuthErrorAsync(replay, "invalid_dpop_proof");
        await AssertStillRefreshesAsync(rotated);
    }

    [Theory]
    [InlineData("GET", TokenUri)]
    [InlineData("POST", Issuer + "/oauth2/revoke")]
    [InlineData("POST", "https://other-service.test.example/oauth2/token")]
    [InlineData("POST", "http://tokens.test.example/oauth2/token")]
    public async Task A_proof_for_another_method_or_uri_is_invalid_dpop_proof_and_changes_nothing(string htm, string htu)
    {
        var refreshToken = (await BoundLoginAsync()).GetProperty("refresh_token").GetString()!;
        using var response = await F.RefreshAsync(refreshToken, _key.Proof(htm, htu, F.Now));
        await AssertOAuthErrorAsync(response, "invalid_dpop_proof");
        await AssertStillRefreshesAsync(refreshToken);
    }

    [Fact]
    public async Task An_equivalent_htu_after_normalisation_is_accepted()
    {
        var refreshToken = (await BoundLoginAsync()).GetProperty("refresh_token").GetString()!;
        using var response = await F.RefreshAsync(refreshToken, _key.Proof("POST", "HTTPS://Tokens.Test.Example:443/oauth2/%74oken", F.Now));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Theory]
    [InlineData(-300)]
    [InlineData(-61)]
    [InlineData(30)]
    [InlineData(86400)]
    public async Task A_stale_or_future_iat_is_invalid_dpop_proof_and_changes_nothing(int offsetSeconds)
    {
        var refreshToken = (await BoundLoginAsync()).GetProperty("refresh_token").GetString()!;
        using var response = await F.RefreshAsync(refreshToken, _key.Proof("POST", TokenUri, F.Now.AddSeconds(offsetSeconds)));
        await AssertOAuthErrorAsync(response, "invalid_dpop_proof");
        await AssertStillRefreshesAsync(refreshToken);
    }

    [Fact]
    public async Task Alg_none_and_hmac_proofs_are_invalid_dpop_proof_and_change_nothing()
    {
        var refreshToken = (await BoundLoginAsync()).GetProperty("refresh_token").GetString()!;
        using (var none = await F.RefreshAsync(refreshToken, _key.UnsignedProof("POST", TokenUri, F.Now)))
        {
            await AssertOAuthErrorAsync(none, "invalid_dpop_proof");
        }

        using (var hmac = await F.RefreshAsync(refreshToken, DpopKey.HmacProof("POST", TokenUri, F.Now)))
        {
            await AssertOAuthErrorAsync(hmac, "invalid_dpop_proof");
        }

        await AssertStillRefreshesAsync(refreshToken);
    }

    [Fact]
    public async Task Private_key_material_in_the_jwk_is_invalid_dpop_proof_and_changes_nothing()
    {
        var refreshToken = (await BoundLoginAsync()).GetProperty("refresh_token").GetString()!;
        using var response = await F.RefreshAsync(refreshToken, _key.Proof("POST", TokenUri, F.Now, jwk: _key.JwkWithPrivateMembers()));
        await AssertOAuthErrorAsync(response, "invalid_dpop_proof");
        await AssertStillRefreshesAsync(refreshToken);
    }

    [Fact]
    public async Task Weak_or_zero_padded_rsa_keys_and_crit_headers_are_invalid_dpop_proof_and_open_no_session()
    {
        using var weak = DpopKey.Rsa("RS256", 1024);
        using var rsa = DpopKey.Rsa("RS256", 2048);
        string[] proofs =
        [
            weak.HandSignedProof("POST", TokenUri, F.Now, jwk: weak.ZeroPaddedRsaJwk(nBytes: 256)),
            rsa.HandSignedProof("POST", TokenUri, F.Now, jwk: rsa.ZeroPaddedRsaJwk(nBytes: 257)),
            rsa.HandSignedProof("POST", TokenUri, F.Now, jwk: rsa.ZeroPaddedRsaJwk(nBytes: 0, eBytes: 4)),
            DpopKey.ExponentOneProof("POST", TokenUri, F.Now),
            _key.HandSignedProof("POST", TokenUri, F.Now, header: h => h["crit"] = new System.Text.Json.Nodes.JsonArray("b64")),
        ];
        var idToken = F.Host.Idp.IdToken(User());
        foreach (var proof in proofs)
        {
            using var refused = await F.ExchangeAsync(proof, "unused", idToken: idToken);
            await AssertOAuthErrorAsync(refused, "invalid_dpop_proof");
        }

        // Nothing was spent: the ID token still opens a session with a sound proof.
        using var accepted = await F.ExchangeAsync(rsa.HandSignedProof("POST", TokenUri, F.Now), "unused", idToken: idToken);
        Assert.Equal(HttpStatusCode.OK, accepted.StatusCode);
    }

    [Fact]
    public async Task A_proof_with_the_sessions_key_in_its_header_but_signed_by_another_key_is_refused()
    {
        var refreshToken = (await BoundLoginAsync()).GetProperty("refresh_token").GetString()!;
        using var attacker = DpopKey.Es256();
        using var response = await F.RefreshAsync(refreshToken, attacker.Proof("POST", TokenUri, F.Now, jwk: _key.PublicJwk));
        await AssertOAuthErrorAsync(response, "invalid_dpop_proof");
        await AssertStillRefreshesAsync(refreshToken);
    }

    [Fact]
    public async Task An_invalid_proof_on_exchange_leaves_the_id_token_unused()
    {
        var idToken = F.Host.Idp.IdToken(User());
        using (var refused = await F.ExchangeAsync(_key.Proof("GET", TokenUri, F.Now), "unused", idToken: idToken))
        {
            await AssertOAuthErrorAsync(refused, "invalid_dpop_proof");
        }

        using var accepted = await F.ExchangeAsync(Proof(), "unused", idToken: idToken);
        Assert.Equal(HttpStatusCode.OK, accepted.StatusCode);
    }

    [Fact]
    public async Task A_client_that_requires_dpop_is_refused_without_a_proof()
    {
        var idToken = F.Host.Idp.IdToken(User());
        using (var refused = await F.ExchangeAsync(null, "unused", BoundClient, BoundSecret, idToken: idToken))
        {
            await AssertOAuthErrorAsync(refused, "invalid_dpop_proof");
        }

        using var accepted = await F.ExchangeAsync(Proof(), "unused", BoundClient, BoundSecret, idToken: idToken);
        var json = await JsonAsync(accepted);
        Assert.Equal(HttpStatusCode.OK, accepted.StatusCode);
        Assert.Equal("DPoP", json.GetProperty("token_type").GetString());
    }

    [Fact]
    public async Task A_spa_session_opened_with_a_proof_binds_its_refresh_cookie()
    {
        var form = new List<KeyValuePair<string, string>>
        {
            new("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
            new("subject_token", F.Host.Idp.IdToken(User())),
            new("subject_token_type", "urn:ietf:params:oauth:token-type:id_token"),
            new("client_id", "spa"),
        };
        using var login = await F.TokenAsync(form, Proof(), origin: SpaOrigin);
        Assert.Equal(HttpStatusCode.OK, login.StatusCode);
        Assert.Equal("DPoP", (await JsonAsync(login)).GetProperty("token_type").GetString());
        var cookie = login.Headers.GetValues("Set-Cookie").Single(c => c.StartsWith("__Host-refresh_token=", StringComparison.Ordinal)).Split(';')[0];
        KeyValuePair<string, string>[] refreshForm = [new("grant_type", "refresh_token"), new("client_id", "spa")];

        // A stolen cookie is useless without the key, and the refused request does not clear the page's cookie.
        using (var stolen = await F.TokenAsync(refreshForm, null, origin: SpaOrigin, cookie: cookie))
        {
            await AssertOAuthErrorAsync(stolen, "invalid_grant");
            Assert.False(stolen.Headers.Contains("Set-Cookie"));
        }

        using var attacker = DpopKey.Es256();
        using (var otherKey = await F.TokenAsync(refreshForm, Proof(attacker), origin: SpaOrigin, cookie: cookie))
        {
            await AssertOAuthErrorAsync(otherKey, "invalid_grant");
        }

        using var owner = await F.TokenAsync(refreshForm, Proof(), origin: SpaOrigin, cookie: cookie);
        Assert.Equal(HttpStatusCode.OK, owner.StatusCode);
        Assert.Equal("DPoP", (await JsonAsync(owner)).GetProperty("token_type").GetString());
    }

    [Fact]
    public async Task A_refresh_with_a_proof_binds_its_access_token_but_never_a_session_opened_without_one()
    {
        using var open = await F.ExchangeAsync(null, User());
        var refreshToken = (await JsonAsync(open)).GetProperty("refresh_token").GetString()!;
        using var withProof = await F.RefreshAsync(refreshToken, Proof());
        var refreshed = await JsonAsync(withProof);
        Assert.Equal(HttpStatusCode.OK, withProof.StatusCode);
        Assert.Equal("DPoP", refreshed.GetProperty("token_type").GetString());
        Assert.Equal(_key.Thumbprint, new JsonWebToken(refreshed.GetProperty("access_token").GetString()).GetPayloadValue<JsonElement>("cnf").GetProperty("jkt").GetString());

        // The refresh token it issued stays a bearer token: the session was not bound by the refresh.
        using var withoutProof = await F.RefreshAsync(refreshed.GetProperty("refresh_token").GetString()!, null);
        var bearer = await JsonAsync(withoutProof);
        Assert.True(withoutProof.StatusCode == HttpStatusCode.OK, bearer.ToString());
        Assert.Equal("Bearer", bearer.GetProperty("token_type").GetString());
    }

    [Fact]
    public async Task A_thief_who_refreshes_a_stolen_unbound_token_with_a_proof_loses_the_session_to_the_victims_reuse()
    {
        // docs/api.md, "DPoP": a refresh with a proof never binds a session opened without one. The victim's session
        // was opened without DPoP; the thief refreshes the stolen token first, with a proof of the thief's own key, and
        // gets a DPoP-bound access token and the next refresh token.
        using var open = await F.ExchangeAsync(null, User());
        var stolen = (await JsonAsync(open)).GetProperty("refresh_token").GetString()!;
        using var thiefKey = DpopKey.Es256();
        using var theft = await F.RefreshAsync(stolen, Proof(thiefKey));
        var thief = await JsonAsync(theft);
        Assert.True(theft.StatusCode == HttpStatusCode.OK, thief.ToString());
        var thiefAccess = thief.GetProperty("access_token").GetString()!;
        Assert.True(await F.Host.IsActiveAsync(thiefAccess));

        // The victim presents the superseded token as before: reuse, and the whole session ends (RFC 9700 §4.14.2).
        using var victim = await F.RefreshAsync(stolen, null);
        await AssertOAuthErrorAsync(victim, "invalid_grant");
        Assert.Contains("already been used", (await JsonAsync(victim)).GetProperty("error_description").GetString(), StringComparison.Ordinal);

        using var thiefAgain = await F.RefreshAsync(thief.GetProperty("refresh_token").GetString()!, Proof(thiefKey));
        await AssertOAuthErrorAsync(thiefAgain, "invalid_grant");
        Assert.False(await F.Host.IsActiveAsync(thiefAccess));
    }

    [Fact]
    public async Task A_thief_who_refreshes_a_stolen_spa_cookie_with_a_proof_loses_the_session_and_the_victims_cookie_is_cleared()
    {
        var form = new List<KeyValuePair<string, string>>
        {
            new("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
            new("subject_token", F.Host.Idp.IdToken(User())),
            new("subject_token_type", "urn:ietf:params:oauth:token-type:id_token"),
            new("client_id", "spa"),
        };
        using var login = await F.TokenAsync(form, null, origin: SpaOrigin);
        Assert.Equal(HttpStatusCode.OK, login.StatusCode);
        var stolenCookie = RefreshCookie(login);
        KeyValuePair<string, string>[] refreshForm = [new("grant_type", "refresh_token"), new("client_id", "spa")];

        using var thiefKey = DpopKey.Es256();
        using var theft = await F.TokenAsync(refreshForm, Proof(thiefKey), origin: SpaOrigin, cookie: stolenCookie);
        Assert.Equal(HttpStatusCode.OK, theft.StatusCode);
        Assert.Equal("DPoP", (await JsonAsync(theft)).GetProperty("token_type").GetString());
        var thiefCookie = RefreshCookie(theft);

        // The victim's page refreshes with its (now superseded) cookie: reuse ends the session and clears the cookie.
        using var victim = await F.TokenAsync(refreshForm, null, origin: SpaOrigin, cookie: stolenCookie);
        await AssertOAuthErrorAsync(victim, "invalid_grant");
        var cleared = victim.Headers.GetValues("Set-Cookie").Single(c => c.StartsWith("__Host-refresh_token=", StringComparison.Ordinal));
        Assert.Contains("max-age=0", cleared.ToLowerInvariant(), StringComparison.Ordinal);

        using var thiefAgain = await F.TokenAsync(refreshForm, Proof(thiefKey), origin: SpaOrigin, cookie: thiefCookie);
        await AssertOAuthErrorAsync(thiefAgain, "invalid_grant");
    }

    private static string RefreshCookie(HttpResponseMessage response) =>
        response.Headers.GetValues("Set-Cookie").Single(c => c.StartsWith("__Host-refresh_token=", StringComparison.Ordinal)).Split(';')[0];

    [Theory]
    [InlineData("not-a-jwt")]
    [InlineData("a.b.c")]
    [InlineData("eyJhbGciOiJub25lIn0.e30.")]
    public async Task Malformed_proofs_are_invalid_dpop_proof_never_a_server_error(string proof)
    {
        var refreshToken = (await BoundLoginAsync()).GetProperty("refresh_token").GetString()!;
        using var response = await F.RefreshAsync(refreshToken, proof);
        await AssertOAuthErrorAsync(response, "invalid_dpop_proof");
        await AssertStillRefreshesAsync(refreshToken);
    }

    [Fact]
    public async Task Cors_allows_the_dpop_header_and_exposes_the_nonce_and_challenge()
    {
        using var preflight = new HttpRequestMessage(HttpMethod.Options, "/oauth2/token");
        preflight.Headers.Add("Origin", SpaOrigin);
        preflight.Headers.Add("Access-Control-Request-Method", "POST");
        preflight.Headers.Add("Access-Control-Request-Headers", "dpop");
        using var answer = await F.Host.Client.SendAsync(preflight);
        Assert.Equal(HttpStatusCode.NoContent, answer.StatusCode);
        Assert.Contains("DPoP", answer.Headers.GetValues("Access-Control-Allow-Headers").Single(), StringComparison.Ordinal);
        Assert.Contains("DPoP-Nonce", answer.Headers.GetValues("Access-Control-Expose-Headers").Single(), StringComparison.Ordinal);
    }
}
