using System.Net;
using System.Net.Http.Headers;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using TokenService.Tests.Infrastructure;
using static TokenService.Tests.Infrastructure.TokenServiceTestHost;

namespace TokenService.Tests.Http;

public sealed class IdpTrustTests
{
    /// <summary>A JWKS endpoint on loopback that counts its fetches and can be switched off.</summary>
    private sealed class JwksServer : IAsyncDisposable
    {
        private readonly WebApplication _app;
        public int Fetches;
        public volatile bool Down;
        public volatile string Path = "";

        private JwksServer(WebApplication app) => _app = app;

        public string Url { get; private set; } = "";

        public static async Task<JwksServer> StartAsync(Func<string> jwksPath)
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.WebHost.UseUrls("http://127.0.0.1:0");
            var app = builder.Build();
            JwksServer? server = null;
            app.MapGet("/jwks", async (HttpContext ctx) =>
            {
                Interlocked.Increment(ref server!.Fetches);
                if (server.Down)
                {
                    ctx.Response.StatusCode = 503;
                    return;
                }

                ctx.Response.ContentType = "application/json";
                await ctx.Response.SendFileAsync(jwksPath());
            });
            server = new JwksServer(app);
            server.Url = (await Loopback.StartAsync(app)).AbsoluteUri.TrimEnd('/') + "/jwks";
            return server;
        }

        public async ValueTask DisposeAsync() => await _app.DisposeAsync();
    }

    [Fact]
    public async Task Keys_from_a_jwks_uri_are_cached_and_an_unknown_kid_triggers_one_rate_limited_refetch()
    {
        var time = new ManualTimeProvider();
        var idp = new TestIdp(time);
        await using var jwks = await JwksServer.StartAsync(() => idp.JwksPath);
        await using var host = await TokenServiceTestHost.StartAsync(new Dictionary<string, string?>
        {
            ["Idp:JwksPath"] = null,
            ["Idp:JwksUri"] = jwks.Url,
            ["Idp:JwksRefetchInterval"] = "00:01:00",
            ["Idp:JwksCacheLifetime"] = "1.00:00:00",
        }, time: time, idp: idp);

        for (var i = 0; i < 3; i++)
        {
            using var ok = await host.ExchangeAsync(idp.IdToken("cached-" + i));
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }

        Assert.Equal(1, jwks.Fetches);
        time.Advance(TimeSpan.FromMinutes(2));

        // Tokens with kids the IdP never published: at most one refetch per interval, however many arrive.
        for (var i = 0; i < 5; i++)
        {
            var header = idp.Header();
            header["kid"] = "rotated-away-" + i;
            using var refused = await host.ExchangeAsync(idp.Sign(idp.Claims("attacker"), header));
            await AssertOAuthErrorAsync(refused, "invalid_request");
        }

        Assert.Equal(2, jwks.Fetches);
    }

    [Fact]
    public async Task An_unreachable_idp_jwks_on_first_use_answers_503_not_a_validation_error()
    {
        var idp = new TestIdp();
        await using var jwks = await JwksServer.StartAsync(() => idp.JwksPath);
        jwks.Down = true;
        await using var host = await TokenServiceTestHost.StartAsync(new Dictionary<string, string?>
        {
            ["Idp:JwksPath"] = null,
            ["Idp:JwksUri"] = jwks.Url,
            ["Idp:JwksRefetchInterval"] = "00:00:00",
        }, idp: idp);

        var idToken = idp.IdToken("patient");
        using (var down = await host.ExchangeAsync(idToken))
        {
            await AssertOAuthErrorAsync(down, "temporarily_unavailable", HttpStatusCode.ServiceUnavailable);
        }

        jwks.Down = false;
        using var up = await host.ExchangeAsync(idToken);
        Assert.Equal(HttpStatusCode.OK, up.StatusCode);
    }

    [Fact]
    public async Task With_an_entra_style_user_id_claim_sessions_belong_to_the_oid()
    {
        await using var host = await TokenServiceTestHost.StartAsync(new Dictionary<string, string?> { ["Idp:UserIdClaim"] = "oid" });
        var oid = Guid.NewGuid().ToString();
        var a = await host.LoginAsync("pairwise-sub-1", c => c["oid"] = oid);
        var b = await host.LoginAsync("pairwise-sub-2", c => c["oid"] = oid);

        using var missing = await host.ExchangeAsync(host.Idp.IdToken("no-oid"));
        await AssertOAuthErrorAsync(missing, "invalid_request");

        using var admin = new HttpRequestMessage(HttpMethod.Post, $"/management/users/{oid}/revoke");
        admin.Headers.Authorization = Basic("ops", OpsSecret);
        using var done = await host.Client.SendAsync(admin);
        Assert.Equal(2, (await JsonAsync(done)).GetProperty("revoked").GetInt32());
        Assert.False(await host.IsActiveAsync(a.AccessToken));
        Assert.False(await host.IsActiveAsync(b.AccessToken));
    }
}
