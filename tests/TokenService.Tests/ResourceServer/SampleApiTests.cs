using System.Net;
using System.Net.Http.Headers;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using TokenService.Tests.Infrastructure;
using static TokenService.Tests.Infrastructure.TokenServiceTestHost;
using Microsoft.Extensions.Time.Testing;

namespace TokenService.Tests.ResourceServer;

/// <summary>
/// A sample API protected as an API developer writes it (JwtBearer pointed at the token service, plus the library's
/// session check), end to end against the real token service.
/// </summary>
public sealed class SampleApiTests
{
    private sealed class SampleApi : IAsyncDisposable
    {
        private readonly WebApplication _app;

        private SampleApi(WebApplication app, HttpClient client) => (_app, Client) = (app, client);

        public HttpClient Client { get; }

        public static async Task<SampleApi> StartAsync(IssuerRewriteHandler handler, TimeSpan statusCache, TimeProvider? time = null)
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.WebHost.UseUrls("http://127.0.0.1:0");
            builder.Logging.SetMinimumLevel(LogLevel.Warning);
            builder.Services.AddTestResourceServer("api://orders", handler, statusCache, time);
            builder.Services.AddAuthorization();
            var app = builder.Build();
            app.UseAuthentication();
            app.UseAuthorization();
            app.MapGet("/orders", (HttpContext ctx) => Results.Ok(new { sub = ctx.User.FindFirst("sub")?.Value })).RequireAuthorization();
            return new SampleApi(app, new HttpClient { BaseAddress = await Loopback.StartAsync(app) });
        }

        public async Task<HttpResponseMessage> GetOrdersAsync(string token)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/orders");
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            return await Client.SendAsync(request);
        }

        public async ValueTask DisposeAsync()
        {
            Client.Dispose();
            await _app.DisposeAsync();
        }
    }

    [Fact]
    public async Task Host_header_variants_never_make_a_proof_for_another_origin_pass_and_never_get_a_5xx()
    {
        await using var host = await TokenServiceTestHost.StartAsync();
        await using var api = await SampleApi.StartAsync(new IssuerRewriteHandler(host.BaseAddress), TimeSpan.Zero);
        using var key = TokenService.Tests.Dpop.DpopKey.Es256();
        var token = await PublicOriginTests.BoundAccessTokenAsync(host, key);
        string[] hosts = ["evil.example", "evil.example:443", "ORDERS.TEST.EXAMPLE", "orders.test.example.", "orders.test.example:8443", "[::1]:80", "127.0.0.1", "xn--rders-kva.test.example", new string('a', 300) + ".example", "a b", "", "orders.test.example@evil.example", "evil.example/orders"];
        foreach (var hostHeader in hosts)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/orders");
            request.Headers.TryAddWithoutValidation("Host", hostHeader);
            request.Headers.Authorization = new AuthenticationHeaderValue("DPoP", token);
            request.Headers.TryAddWithoutValidation("DPoP", key.Proof("GET", "http://" + hostHeader + "/orders", TimeProvider.System.GetUtcNow(), accessToken: token));
            HttpResponseMessage response;
            try
            {
                response = await api.Client.SendAsync(request);
            }
            catch (InvalidOperationException)
            {
                continue; // a Host the client library refuses to send never reaches the API
            }

            using (response)
            {
                Assert.True((int)response.StatusCode is 400 or 401, $"Host '{hostHeader}': {(int)response.StatusCode}");
            }
        }
    }

    [Fact]
    public async Task The_sample_api_accepts_valid_tokens_and_rejects_forged_wrong_audience_revoked_and_expired_ones()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var host = await TokenServiceTestHost.StartAsync();
        var handler = new IssuerRewriteHandler(host.BaseAddress);
        await using var api = await SampleApi.StartAsync(handler, TimeSpan.FromSeconds(1), time);

        var login = await host.LoginAsync("api-user");
        using (var ok = await api.GetOrdersAsync(login.AccessToken))
        {
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
            Assert.Contains("api-user", await ok.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        var parts = login.AccessToken.Split('.');
        using (var forged = await api.GetOrdersAsync(parts[0] + "." + parts[1] + "." + new string('A', parts[2].Length)))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, forged.StatusCode);
            Assert.Contains("invalid_token", forged.Headers.WwwAuthenticate.ToString(), StringComparison.Ordinal);
        }

        using var billing = await host.ExchangeAsync(host.Idp.IdToken("api-user-2"), extra: ("audience", "api://billing"));
        using (var wrongAudience = await api.GetOrdersAsync((await JsonAsync(billing)).GetProperty("access_token").GetString()!))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, wrongAudience.StatusCode);
        }

        // Revoked: refused once the status cache (1 s here) has expired.
        using var revoke = await host.PostFormAsync("/oauth2/revoke", [new("token", login.AccessToken)], Basic("web", WebSecret));
        time.Advance(TimeSpan.FromSeconds(1.5));
        using (var revoked = await api.GetOrdersAsync(login.AccessToken))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, revoked.StatusCode);
        }

        // Expired: the API's clock moves past exp + skew.
        var fresh = await host.LoginAsync("api-user-3");
        using (var fine = await api.GetOrdersAsync(fresh.AccessToken))
        {
            Assert.Equal(HttpStatusCode.OK, fine.StatusCode);
        }

        time.Advance(TimeSpan.FromMinutes(16));
        using (var expired = await api.GetOrdersAsync(fresh.AccessToken))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, expired.StatusCode);
        }

        using var none = await api.Client.GetAsync("/orders");
        Assert.Equal(HttpStatusCode.Unauthorized, none.StatusCode);
    }

    [Fact]
    public async Task Every_es256_token_of_a_key_is_accepted_not_only_the_first()
    {
        // Found by the year simulation (YearOfOperationTests): IdentityModel hands the algorithm validator the JWK the first
        // time a key verifies, and the ECDsaSecurityKey it converted the JWK to from then on; the library's check that
        // binds ES256 to a P-256 key knew only JWKs and RSA keys, so the second ES256 token of every key was refused.
        await using var host = await TokenServiceTestHost.StartAsync(new Dictionary<string, string?> { ["Keys:Algorithm"] = "ES256" });
        await using var api = await SampleApi.StartAsync(new IssuerRewriteHandler(host.BaseAddress), TimeSpan.Zero);

        for (var i = 0; i < 3; i++)
        {
            var login = await host.LoginAsync("es256-user-" + i);
            Assert.Equal("ES256", new Microsoft.IdentityModel.JsonWebTokens.JsonWebToken(login.AccessToken).Alg);
            using var response = await api.GetOrdersAsync(login.AccessToken);
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"token {i + 1}: {(int)response.StatusCode} {response.Headers.WwwAuthenticate}");
        }
    }

    [Fact]
    public async Task Tokens_signed_with_the_services_key_but_another_typ_or_a_crit_header_are_refused_by_the_resource_server()
    {
        await using var host = await TokenServiceTestHost.StartAsync();
        var handler = new IssuerRewriteHandler(host.BaseAddress);
        await using var api = await SampleApi.StartAsync(handler, TimeSpan.FromSeconds(30));
        var login = await host.LoginAsync("profile-user");
        var payload = System.Text.Encoding.UTF8.GetString(Microsoft.IdentityModel.Tokens.Base64UrlEncoder.DecodeBytes(login.AccessToken.Split('.')[1]));
        var key = (await host.Services.GetRequiredService<TokenService.Keys.ISigningKeyService>().GetKeySetAsync(default)).Active!;

        // The same claims, validly signed: accepted with typ at+jwt, refused as an ID token's "JWT" (RFC 9068 §4) and with
        // a "crit" header naming an extension nobody understands (RFC 7515 §4.1.11).
        var cases = new (string Header, HttpStatusCode Expected)[]
        {
            ($$"""{"alg":"{{key.Algorithm}}","kid":"{{key.Kid}}","typ":"at+jwt"}""", HttpStatusCode.OK),
            ($$"""{"alg":"{{key.Algorithm}}","kid":"{{key.Kid}}","typ":"JWT"}""", HttpStatusCode.Unauthorized),
            ($$"""{"alg":"{{key.Algorithm}}","kid":"{{key.Kid}}"}""", HttpStatusCode.Unauthorized),
            ($$"""{"alg":"{{key.Algorithm}}","kid":"{{key.Kid}}","typ":"at+jwt","crit":["urn:example:x"],"urn:example:x":1}""", HttpStatusCode.Unauthorized),
        };
        foreach (var (header, expected) in cases)
        {
            var token = await TokenService.Tests.Hardening.Crafted.SignByServiceAsync(host, payload, header);
            using var response = await api.GetOrdersAsync(token);
            Assert.True(expected == response.StatusCode, $"{header}: {response.StatusCode}");
            if (expected == HttpStatusCode.Unauthorized)
            {
                Assert.Contains("invalid_token", response.Headers.WwwAuthenticate.ToString(), StringComparison.Ordinal);
            }
        }
    }

    [Fact]
    public async Task After_a_key_revocation_the_sample_api_refuses_that_keys_tokens_and_accepts_the_new_keys()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var host = await TokenServiceTestHost.StartAsync();
        var handler = new IssuerRewriteHandler(host.BaseAddress);
        await using var api = await SampleApi.StartAsync(handler, TimeSpan.FromSeconds(1), time);
        var login = await host.LoginAsync("key-compromise");
        using (var ok = await api.GetOrdersAsync(login.AccessToken))
        {
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }

        var kid = new Microsoft.IdentityModel.JsonWebTokens.JsonWebToken(login.AccessToken).Kid;
        using (var revoke = new HttpRequestMessage(HttpMethod.Post, $"/management/keys/{kid}/revoke"))
        {
            revoke.Headers.Authorization = Basic("ops", OpsSecret);
            using var revoked = await host.Client.SendAsync(revoke);
            Assert.Equal(HttpStatusCode.OK, revoked.StatusCode);
        }

        // The API still holds the key in its JWKS cache; its session-status check (introspection, cached 1 s here)
        // learns that the token no longer verifies at the token service.
        time.Advance(TimeSpan.FromSeconds(1.5));
        using (var refused = await api.GetOrdersAsync(login.AccessToken))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        }

        // The session survives: its refresh gets a token from the new key, published without notice. The very request
        // that meets the new kid is served: the library fetches the keys at once rather than refusing while JwtBearer's
        // ConfigurationManager refreshes in the background.
        using var refresh = await host.RefreshAsync(login.RefreshToken);
        var token = (await JsonAsync(refresh)).GetProperty("access_token").GetString()!;
        Assert.NotEqual(kid, new Microsoft.IdentityModel.JsonWebTokens.JsonWebToken(token).Kid);
        using (var served = await api.GetOrdersAsync(token))
        {
            Assert.Equal(HttpStatusCode.OK, served.StatusCode);
            Assert.Contains("key-compromise", await served.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        // The fresh keys still go through the session check: once the session ends, the new key's token is refused too.
        using (var logout = new HttpRequestMessage(HttpMethod.Post, "/management/users/key-compromise/revoke"))
        {
            logout.Headers.Authorization = Basic("ops", OpsSecret);
            using var loggedOut = await host.Client.SendAsync(logout);
            Assert.Equal(HttpStatusCode.OK, loggedOut.StatusCode);
        }

        time.Advance(TimeSpan.FromSeconds(1.5));
        using (var ended = await api.GetOrdersAsync(token))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, ended.StatusCode);
        }
    }

    [Fact]
    public async Task Tokens_with_unknown_kids_cost_at_most_one_key_fetch_per_interval_and_fail_closed_when_keys_cannot_be_fetched()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var host = await TokenServiceTestHost.StartAsync();
        var handler = new IssuerRewriteHandler(host.BaseAddress);
        await using var api = await SampleApi.StartAsync(handler, TimeSpan.FromSeconds(30), time);
        var login = await host.LoginAsync("kid-user");
        using (var ok = await api.GetOrdersAsync(login.AccessToken))
        {
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }

        // A made-up kid (the token is otherwise the real one): refused, whatever the fetched keys say.
        var parts = login.AccessToken.Split('.');
        var header = System.Text.Json.Nodes.JsonNode.Parse(Microsoft.IdentityModel.Tokens.Base64UrlEncoder.Decode(parts[0]))!;
        string WithKid(string kid)
        {
            header["kid"] = kid;
            return Microsoft.IdentityModel.Tokens.Base64UrlEncoder.Encode(header.ToJsonString()) + "." + parts[1] + "." + parts[2];
        }

        var before = handler.Requests;
        for (var i = 0; i < 20; i++)
        {
            using var refused = await api.GetOrdersAsync(WithKid("made-up-" + i));
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        }

        // One fetch of discovery and JWKS by the library, awaited; at most one more by JwtBearer's ConfigurationManager,
        // which the library asks to refresh (it refreshes at most every 5 minutes).
        Assert.InRange(handler.Requests - before, 2, 4);

        // The interval over, one fetch more; the manager's own limit holds.
        time.Advance(TimeSpan.FromSeconds(31));
        var second = handler.Requests;
        for (var i = 0; i < 5; i++)
        {
            using var refused = await api.GetOrdersAsync(WithKid("other-" + i));
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        }

        Assert.InRange(handler.Requests - second, 2, 4);

        // The token service down: a kid the cache lacks cannot be checked, so the request fails closed with 503, and the
        // failure is remembered for Retry-After (5 s) rather than retried by every request.
        await host.DisposeAsync();
        time.Advance(TimeSpan.FromSeconds(31));
        using (var unavailable = await api.GetOrdersAsync(WithKid("while-down")))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, unavailable.StatusCode);
            Assert.NotNull(unavailable.Headers.RetryAfter);
        }

        var whileDown = handler.Requests;
        using (var again = await api.GetOrdersAsync(WithKid("while-down-2")))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, again.StatusCode);
        }

        Assert.Equal(whileDown, handler.Requests);
    }

    [Fact]
    public async Task Warm_validation_makes_no_call_and_keeps_serving_from_cache_when_the_token_service_is_down()
    {
        var host = await TokenServiceTestHost.StartAsync();
        var handler = new IssuerRewriteHandler(host.BaseAddress);
        await using var api = await SampleApi.StartAsync(handler, TimeSpan.FromSeconds(30));
        var seen = await host.LoginAsync("cached-user");
        var unseen = await host.LoginAsync("unseen-user");
        using (var first = await api.GetOrdersAsync(seen.AccessToken))
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        }

        var calls = handler.Requests;
        for (var i = 0; i < 5; i++)
        {
            using var warm = await api.GetOrdersAsync(seen.AccessToken);
            Assert.Equal(HttpStatusCode.OK, warm.StatusCode);
        }

        Assert.Equal(calls, handler.Requests);

        await host.DisposeAsync();
        using (var stillServed = await api.GetOrdersAsync(seen.AccessToken))
        {
            Assert.Equal(HttpStatusCode.OK, stillServed.StatusCode);
        }

        // Status unknown and nothing cached: fail closed, 503 with Retry-After.
        using var failClosed = await api.GetOrdersAsync(unseen.AccessToken);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, failClosed.StatusCode);
        Assert.NotNull(failClosed.Headers.RetryAfter);

        // An API that never reached the token service (no discovery document, no keys): 503 too, never a 500.
        await using var cold = await SampleApi.StartAsync(new IssuerRewriteHandler(host.BaseAddress), TimeSpan.FromSeconds(30));
        using var unreachable = await cold.GetOrdersAsync(seen.AccessToken);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, unreachable.StatusCode);
        Assert.NotNull(unreachable.Headers.RetryAfter);
    }
}
