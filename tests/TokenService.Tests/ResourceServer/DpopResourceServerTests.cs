using System.Net;
using System.Net.Http.Headers;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.IdentityModel.JsonWebTokens;
using TokenService.Dpop;
using TokenService.Tests.Dpop;
using TokenService.Validation;
using TokenService.Tests.Infrastructure;
using static TokenService.Tests.Infrastructure.TokenServiceTestHost;

namespace TokenService.Tests.ResourceServer;

/// <summary>
/// DPoP (RFC 9449 §7) in the resource-server library: an API protected by JwtBearer plus the library's extension takes
/// <c>Authorization: DPoP</c> with a proof of the token's key, and refuses every way of using a bound token without it.
/// </summary>
public sealed class DpopResourceServerTests : IAsyncLifetime
{
    private readonly DpopKey _key = DpopKey.Es256();
    private TokenServiceTestHost _host = null!;
    private WebApplication _api = null!;
    private HttpClient _client = null!;

    private static Uri Orders => new(ResourceServerSetup.PublicOrigin, "/orders");

    private static DateTimeOffset Now => TimeProvider.System.GetUtcNow();

    public async Task InitializeAsync()
    {
        _host = await StartAsync();
        (_api, _client) = await StartApiAsync(_host);
    }

    private static async Task<(WebApplication Api, HttpClient Client)> StartApiAsync(TokenServiceTestHost host, IDpopReplayCache? replayCache = null, Uri? publicOrigin = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Services.AddTestResourceServer("api://orders", new IssuerRewriteHandler(host.BaseAddress), TimeSpan.Zero);
        builder.Services.Configure<SessionCheckOptions>(JwtBearerDefaults.AuthenticationScheme, o =>
        {
            o.DpopReplayCache = replayCache;
            o.PublicOrigin = publicOrigin ?? o.PublicOrigin;
        });
        builder.Services.AddAuthorization();
        var api = builder.Build();
        api.UseAuthentication();
        api.UseAuthorization();
        api.MapGet("/orders", (HttpContext ctx) => Results.Ok(new { sub = ctx.User.FindFirst("sub")?.Value })).RequireAuthorization();
        api.MapGet("/invoices", () => Results.Ok()).RequireAuthorization();
        return (api, new HttpClient { BaseAddress = await Loopback.StartAsync(api) });
    }

    public async Task DisposeAsync()
    {
        _client.Dispose();
        await _api.DisposeAsync();
        await _host.DisposeAsync();
        _key.Dispose();
    }

    /// <summary>A token exchange with a proof of <see cref="_key"/>: the access token is bound to it (cnf.jkt).</summary>
    private async Task<string> BoundAccessTokenAsync(string subject)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/oauth2/token")
        {
            Content = new FormUrlEncodedContent(
            [
                new("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
                new("subject_token", _host.Idp.IdToken(subject)),
                new("subject_token_type", "urn:ietf:params:oauth:token-type:id_token"),
                new("audience", "api://orders"),
            ]),
        };
        request.Headers.Authorization = Basic("web", WebSecret);
        request.Headers.TryAddWithoutValidation("DPoP", _key.Proof("POST", Issuer + "/oauth2/token", Now));
        using var response = await _host.Client.SendAsync(request);
        var json = await JsonAsync(response);
        Assert.True(response.StatusCode == HttpStatusCode.OK, json.ToString());
        Assert.Equal("DPoP", json.GetProperty("token_type").GetString());
        return json.GetProperty("access_token").GetString()!;
    }

    private async Task<HttpResponseMessage> CallAsync(string scheme, string token, string? proof, string path = "/orders")
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Authorization = new AuthenticationHeaderValue(scheme, token);
        if (proof is not null)
        {
            request.Headers.TryAddWithoutValidation("DPoP", proof);
        }

        return await _client.SendAsync(request);
    }

    private string ProofFor(string token, DpopKey? key = null, string method = "GET", Uri? uri = null, DateTimeOffset? iat = null) =>
        (key ?? _key).Proof(method, (uri ?? Orders).ToString(), iat ?? Now, accessToken: token);

    private static void AssertDpopChallenge(HttpResponseMessage response, string error)
    {
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        var challenge = Assert.Single(response.Headers.WwwAuthenticate, h => h.Scheme == "DPoP");
        Assert.Contains($"error=\"{error}\"", challenge.Parameter, StringComparison.Ordinal);
        Assert.Contains("algs=\"", challenge.Parameter, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_bound_token_with_a_proof_of_its_key_is_accepted()
    {
        var token = await BoundAccessTokenAsync("rs-dpop-ok");
        using var response = await CallAsync("DPoP", token, ProofFor(token));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("rs-dpop-ok", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_bound_token_of_a_key_rotated_in_without_notice_is_accepted_at_once_and_its_binding_still_holds()
    {
        var before = await BoundAccessTokenAsync("rs-dpop-rotated");
        using (var warm = await CallAsync("DPoP", before, ProofFor(before)))
        {
            Assert.Equal(HttpStatusCode.OK, warm.StatusCode); // the API holds the JWKS without the next key
        }

        using (var rotate = new HttpRequestMessage(HttpMethod.Post, "/management/keys/rotate?immediate=true"))
        {
            rotate.Headers.Authorization = Basic("ops", OpsSecret);
            using var rotated = await _host.Client.SendAsync(rotate);
            Assert.Equal(HttpStatusCode.OK, rotated.StatusCode);
        }

        // The new key's token meets a kid the API's cached JWKS lacks: the keys are fetched at once, and the DPoP binding
        // and session check run on that path as on the usual one.
        var token = await BoundAccessTokenAsync("rs-dpop-rotated");
        Assert.NotEqual(new JsonWebToken(before).Kid, new JsonWebToken(token).Kid);
        using (var asBearer = await CallAsync("Bearer", token, null))
        {
            AssertDpopChallenge(asBearer, "invalid_token");
        }

        var proof = ProofFor(token);
        using (var accepted = await CallAsync("DPoP", token, proof))
        {
            Assert.Equal(HttpStatusCode.OK, accepted.StatusCode);
        }

        using var replayed = await CallAsync("DPoP", token, proof);
        AssertDpopChallenge(replayed, "invalid_dpop_proof");
    }

    [Fact]
    public async Task A_bound_token_sent_as_a_bearer_token_is_refused_even_with_a_proof()
    {
        var token = await BoundAccessTokenAsync("rs-dpop-bearer");
        using var plain = await CallAsync("Bearer", token, null);
        AssertDpopChallenge(plain, "invalid_token");
        using var withProof = await CallAsync("Bearer", token, ProofFor(token));
        AssertDpopChallenge(withProof, "invalid_token");
    }

    [Fact]
    public async Task A_bound_token_without_a_proof_or_with_a_replayed_one_is_refused()
    {
        var token = await BoundAccessTokenAsync("rs-dpop-replay");
        using var none = await CallAsync("DPoP", token, null);
        AssertDpopChallenge(none, "invalid_dpop_proof");

        var proof = ProofFor(token);
        using var first = await CallAsync("DPoP", token, proof);
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        using var replayed = await CallAsync("DPoP", token, proof);
        AssertDpopChallenge(replayed, "invalid_dpop_proof");
    }

    [Fact]
    public async Task A_proof_for_another_token_method_uri_or_time_is_refused()
    {
        var token = await BoundAccessTokenAsync("rs-dpop-mismatch");
        var other = await BoundAccessTokenAsync("rs-dpop-mismatch-2");
        var cases = new[]
        {
            ProofFor(other), // ath of another token
            ProofFor(token, method: "POST"),
            ProofFor(token, uri: new Uri(ResourceServerSetup.PublicOrigin, "/invoices")),
            ProofFor(token, iat: Now - TimeSpan.FromMinutes(5)),
            ProofFor(token, iat: Now + TimeSpan.FromMinutes(5)),
        };
        foreach (var proof in cases)
        {
            using var response = await CallAsync("DPoP", token, proof);
            AssertDpopChallenge(response, "invalid_dpop_proof");
        }

        using var fine = await CallAsync("DPoP", token, ProofFor(token));
        Assert.Equal(HttpStatusCode.OK, fine.StatusCode);
    }

    [Fact]
    public async Task A_proof_signed_by_another_key_than_the_tokens_is_refused()
    {
        var token = await BoundAccessTokenAsync("rs-dpop-otherkey");
        using var thief = DpopKey.Es256();
        using var response = await CallAsync("DPoP", token, ProofFor(token, thief));
        AssertDpopChallenge(response, "invalid_token");
        Assert.NotEqual(thief.Thumbprint, new JsonWebToken(token).GetPayloadValue<System.Text.Json.JsonElement>("cnf").GetProperty("jkt").GetString());
    }

    [Fact]
    public async Task Unbound_tokens_stay_bearer_tokens_and_the_challenge_offers_both_schemes()
    {
        var login = await _host.LoginAsync("rs-dpop-bearer-only");
        using var ok = await CallAsync("Bearer", login.AccessToken, null);
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);

        // An unbound token cannot be presented as DPoP: there is no key to prove.
        using var asDpop = await CallAsync("DPoP", login.AccessToken, ProofFor(login.AccessToken));
        AssertDpopChallenge(asDpop, "invalid_token");

        using var none = await _client.GetAsync("/orders");
        Assert.Equal(HttpStatusCode.Unauthorized, none.StatusCode);
        Assert.Contains(none.Headers.WwwAuthenticate, h => h.Scheme == "Bearer");
        Assert.Contains(none.Headers.WwwAuthenticate, h => h.Scheme == "DPoP" && h.Parameter!.Contains("ES256", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_shared_replay_cache_catches_a_proof_replayed_to_another_instance_and_an_unreachable_one_fails_closed()
    {
        // Two instances behind one public name (a load balancer's), sharing one replay cache.
        var origin = new Uri("https://orders.example.edu");
        var shared = new SwitchableReplayCache();
        var (first, firstClient) = await StartApiAsync(_host, shared, origin);
        var (second, secondClient) = await StartApiAsync(_host, shared, origin);
        await using (first)
        await using (second)
        using (firstClient)
        using (secondClient)
        {
            var token = await BoundAccessTokenAsync("rs-dpop-shared");
            var proof = ProofFor(token, uri: new Uri(origin, "/orders"));

            using (var once = await SendAsync(firstClient, token, proof))
            {
                Assert.Equal(HttpStatusCode.OK, once.StatusCode);
            }

            using (var replayed = await SendAsync(secondClient, token, proof))
            {
                AssertDpopChallenge(replayed, "invalid_dpop_proof");
            }

            shared.Failing = true;
            using var unavailable = await SendAsync(firstClient, token, ProofFor(token, uri: new Uri(origin, "/orders")));
            Assert.Equal(HttpStatusCode.ServiceUnavailable, unavailable.StatusCode);
            Assert.NotNull(unavailable.Headers.RetryAfter);
        }

        static async Task<HttpResponseMessage> SendAsync(HttpClient client, string token, string proof)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/orders");
            request.Headers.Authorization = new AuthenticationHeaderValue("DPoP", token);
            request.Headers.TryAddWithoutValidation("DPoP", proof);
            return await client.SendAsync(request);
        }
    }

    /// <summary>A replay cache shared by two API instances, which can be made unreachable.</summary>
    private sealed class SwitchableReplayCache : IDpopReplayCache
    {
        private readonly InMemoryDpopReplayCache _inner = new(TimeProvider.System);

        public volatile bool Failing;

        public ValueTask<bool> TryAddAsync(string key, DateTimeOffset expiresAt, CancellationToken cancellationToken) =>
            Failing ? throw new HttpRequestException("injected outage") : _inner.TryAddAsync(key, expiresAt, cancellationToken);
    }
}
