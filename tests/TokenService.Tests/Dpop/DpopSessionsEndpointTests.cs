using System.Net;
using System.Text.Json;
using TokenService.Tests.Infrastructure;
using static TokenService.Tests.Dpop.DpopHostFixture;
using static TokenService.Tests.Infrastructure.TokenServiceTestHost;

namespace TokenService.Tests.Dpop;

public sealed class DpopSessionsEndpointTests(DpopHostFixture fixture) : DpopSessionsEndpointTests<DpopHostFixture>(fixture);

public sealed class DpopSessionsEndpointTestsOnFunctions(DpopFunctionsHostFixture fixture) : DpopSessionsEndpointTests<DpopFunctionsHostFixture>(fixture);

/// <summary>The same tests against the published app under a real Functions host (<see cref="RealFunctionsHostPool"/>).</summary>
[RealFunctionsHostTier]
[Collection(RealFunctionsHostCollection.Name)]
public sealed class DpopSessionsEndpointTestsOnRealHost(DpopRealFunctionsHostFixture fixture) : DpopSessionsEndpointTests<DpopRealFunctionsHostFixture>(fixture);

/// <summary>
/// RFC 9449 §7 at the session endpoints: <c>Authorization: DPoP</c> with a proof whose <c>ath</c> matches, a bound
/// token refused as <c>Bearer</c> (§7.2), and <c>WWW-Authenticate: DPoP</c> challenges with the §7.1 error codes.
/// </summary>
public abstract class DpopSessionsEndpointTests<TFixture>(TFixture fixture) : IClassFixture<TFixture>
    where TFixture : DpopHostFixture
{
    private readonly DpopKey _key = DpopKey.Es256();

    private TFixture F => fixture;

    /// <summary>A DPoP-bound access token for the session endpoints (audience = issuer).</summary>
    private async Task<string> BoundSessionsTokenAsync()
    {
        using var response = await F.ExchangeAsync(_key.Proof("POST", TokenUri, F.Now), "dpop-rs-" + Guid.NewGuid().ToString("N"), audience: Issuer);
        var json = await JsonAsync(response);
        Assert.True(response.StatusCode == HttpStatusCode.OK, json.ToString());
        return json.GetProperty("access_token").GetString()!;
    }

    private static string Challenge(HttpResponseMessage response) =>
        string.Join(" | ", response.Headers.WwwAuthenticate.Select(h => h.ToString()));

    [Fact]
    public async Task A_bound_token_with_the_dpop_scheme_and_a_matching_proof_is_accepted()
    {
        var token = await BoundSessionsTokenAsync();
        using var response = await F.SessionsAsync(HttpMethod.Get, "/sessions", "DPoP", token, _key.Proof("GET", SessionsUri, F.Now, accessToken: token));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Single((await JsonAsync(response)).GetProperty("sessions").EnumerateArray());
    }

    [Fact]
    public async Task A_bound_token_sent_as_bearer_is_refused()
    {
        var token = await BoundSessionsTokenAsync();
        using var response = await F.SessionsAsync(HttpMethod.Get, "/sessions", "Bearer", token);
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        var challenge = Challenge(response);
        Assert.Contains("Bearer", challenge, StringComparison.Ordinal);
        Assert.Contains("error=\"invalid_token\"", challenge, StringComparison.Ordinal);
        Assert.Contains("DPoP algs=", challenge, StringComparison.Ordinal);

        // Nothing was changed: the same token still works as intended.
        using var proper = await F.SessionsAsync(HttpMethod.Get, "/sessions", "DPoP", token, _key.Proof("GET", SessionsUri, F.Now, accessToken: token));
        Assert.Equal(HttpStatusCode.OK, proper.StatusCode);
    }

    [Fact]
    public async Task An_ath_mismatch_is_invalid_dpop_proof()
    {
        var token = await BoundSessionsTokenAsync();
        var other = await BoundSessionsTokenAsync();
        using var response = await F.SessionsAsync(HttpMethod.Get, "/sessions", "DPoP", token, _key.Proof("GET", SessionsUri, F.Now, accessToken: other));
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.StartsWith("DPoP error=\"invalid_dpop_proof\"", Challenge(response), StringComparison.Ordinal);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task The_dpop_scheme_without_a_proof_or_with_a_replayed_one_is_invalid_dpop_proof()
    {
        var token = await BoundSessionsTokenAsync();
        using (var none = await F.SessionsAsync(HttpMethod.Get, "/sessions", "DPoP", token))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, none.StatusCode);
            Assert.Contains("invalid_dpop_proof", Challenge(none), StringComparison.Ordinal);
        }

        var proof = _key.Proof("GET", SessionsUri, F.Now, accessToken: token);
        using (var first = await F.SessionsAsync(HttpMethod.Get, "/sessions", "DPoP", token, proof))
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        }

        using var replay = await F.SessionsAsync(HttpMethod.Get, "/sessions", "DPoP", token, proof);
        Assert.Equal(HttpStatusCode.Unauthorized, replay.StatusCode);
        Assert.Contains("invalid_dpop_proof", Challenge(replay), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_proof_of_another_key_is_invalid_token_for_the_key_binding()
    {
        var token = await BoundSessionsTokenAsync();
        using var attacker = DpopKey.Es256();
        using var response = await F.SessionsAsync(HttpMethod.Get, "/sessions", "DPoP", token, attacker.Proof("GET", SessionsUri, F.Now, accessToken: token));
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.StartsWith("DPoP error=\"invalid_token\"", Challenge(response), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_proof_for_another_route_or_method_is_refused()
    {
        var token = await BoundSessionsTokenAsync();
        using var wrongMethod = await F.SessionsAsync(HttpMethod.Post, "/sessions/revoke-others", "DPoP", token, _key.Proof("GET", Issuer + "/sessions/revoke-others", F.Now, accessToken: token));
        Assert.Equal(HttpStatusCode.Unauthorized, wrongMethod.StatusCode);
        using var wrongRoute = await F.SessionsAsync(HttpMethod.Post, "/sessions/revoke-others", "DPoP", token, _key.Proof("POST", SessionsUri, F.Now, accessToken: token));
        Assert.Equal(HttpStatusCode.Unauthorized, wrongRoute.StatusCode);
        using var right = await F.SessionsAsync(HttpMethod.Post, "/sessions/revoke-others", "DPoP", token, _key.Proof("POST", Issuer + "/sessions/revoke-others", F.Now, accessToken: token));
        Assert.Equal(HttpStatusCode.OK, right.StatusCode);
    }

    [Fact]
    public async Task An_unbound_token_with_the_dpop_scheme_is_invalid_token()
    {
        using var login = await F.ExchangeAsync(null, "dpop-bearer-" + Guid.NewGuid().ToString("N"), audience: Issuer);
        var token = (await JsonAsync(login)).GetProperty("access_token").GetString()!;
        using var response = await F.SessionsAsync(HttpMethod.Get, "/sessions", "DPoP", token, _key.Proof("GET", SessionsUri, F.Now, accessToken: token));
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.StartsWith("DPoP error=\"invalid_token\"", Challenge(response), StringComparison.Ordinal);

        using var asBearer = await F.SessionsAsync(HttpMethod.Get, "/sessions", "Bearer", token);
        Assert.Equal(HttpStatusCode.OK, asBearer.StatusCode);
    }

    [Fact]
    public async Task Without_credentials_both_schemes_are_offered_with_the_dpop_algorithms()
    {
        using var response = await F.SessionsAsync(HttpMethod.Get, "/sessions", "DPoP", null);
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        var schemes = response.Headers.WwwAuthenticate.Select(h => h.Scheme).ToList();
        Assert.Equal(["Bearer", "DPoP"], schemes);
        Assert.Contains("ES256", response.Headers.WwwAuthenticate.Last().Parameter, StringComparison.Ordinal);
        Assert.DoesNotContain("error=", Challenge(response), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Sessions_cors_answers_expose_the_challenge_and_allow_the_dpop_header()
    {
        using var preflight = new HttpRequestMessage(HttpMethod.Options, "/sessions");
        preflight.Headers.Add("Origin", SpaOrigin);
        preflight.Headers.Add("Access-Control-Request-Method", "GET");
        using var answer = await F.Host.Client.SendAsync(preflight);
        Assert.Contains("DPoP", answer.Headers.GetValues("Access-Control-Allow-Headers").Single(), StringComparison.Ordinal);

        var token = await BoundSessionsTokenAsync();
        using var refused = await F.SessionsAsync(HttpMethod.Get, "/sessions", "Bearer", token, headers: [new("Origin", SpaOrigin)]);
        Assert.Contains("WWW-Authenticate", refused.Headers.GetValues("Access-Control-Expose-Headers").Single(), StringComparison.Ordinal);
    }
}
