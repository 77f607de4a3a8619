using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using TokenService.Jwt;
using TokenService.Tests.Infrastructure;
using static TokenService.Tests.Infrastructure.TokenServiceTestHost;

namespace TokenService.Tests.Http;

public sealed class IdpTrustTests
{
    /// <summary>
    /// A JWKS endpoint on loopback that counts its fetches and can be switched off, held (<see cref="Gate"/>), or made
    /// to serve another body (<see cref="Body"/>, sent chunked, without Content-Length).
    /// </summary>
    private sealed class JwksServer : IAsyncDisposable
    {
        private readonly WebApplication _app;
        public int Fetches;
        public volatile bool Down;
        public volatile string Path = "";
        public volatile TaskCompletionSource? Gate;
        public volatile byte[]? Body;

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
                if (server.Gate is { } gate)
                {
                    await gate.Task;
                }

                if (server.Down)
                {
                    ctx.Response.StatusCode = 503;
                    return;
                }

                ctx.Response.ContentType = "application/json";
                if (server.Body is { } body)
                {
                    await ctx.Response.StartAsync();
                    await ctx.Response.Body.WriteAsync(body);
                    return;
                }

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
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
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

    public static TheoryData<HostKind> Hosts => new() { HostKind.Standalone, HostKind.Functions };

    [Theory]
    [MemberData(nameof(Hosts))]
    public async Task With_the_idp_jwks_down_and_nothing_cached_tokens_cause_one_fetch_per_refetch_interval(HostKind kind)
    {
        // An unknown kid refetches the IdP's JWKS at most once per interval: 3,000 forged ID tokens used to cause
        // 3,000 fetches (and 3,000 warnings).
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var idp = new TestIdp(time);
        await using var jwks = await JwksServer.StartAsync(() => idp.JwksPath);
        jwks.Down = true;
        await using var host = await TokenServiceTestHost.StartAsync(kind, new Dictionary<string, string?>
        {
            ["Idp:JwksPath"] = null,
            ["Idp:JwksUri"] = jwks.Url,
            ["Idp:JwksRefetchInterval"] = "00:00:30",
        }, time, idp);

        async Task AssertUnavailableAsync(string label)
        {
            var header = idp.Header();
            header["kid"] = "forged-" + label;
            using var forged = await host.ExchangeAsync(idp.Sign(idp.Claims("attacker"), header));
            await AssertOAuthErrorAsync(forged, "temporarily_unavailable", HttpStatusCode.ServiceUnavailable);
            Assert.NotNull(forged.Headers.RetryAfter);
        }

        for (var i = 0; i < 10; i++)
        {
            await AssertUnavailableAsync("serial-" + i);
        }

        await Task.WhenAll(Enumerable.Range(0, 10).Select(i => AssertUnavailableAsync("parallel-" + i)));
        Assert.Equal(1, jwks.Fetches);

        time.Advance(TimeSpan.FromSeconds(29));
        await AssertUnavailableAsync("before-interval");
        Assert.Equal(1, jwks.Fetches);

        time.Advance(TimeSpan.FromSeconds(1));
        await AssertUnavailableAsync("after-interval");
        Assert.Equal(2, jwks.Fetches);

        // The IdP is back: within the interval after the failed fetch still 503 without a fetch, then served.
        jwks.Down = false;
        using (var early = await host.ExchangeAsync(idp.IdToken("patient")))
        {
            await AssertOAuthErrorAsync(early, "temporarily_unavailable", HttpStatusCode.ServiceUnavailable);
        }

        Assert.Equal(2, jwks.Fetches);
        time.Advance(TimeSpan.FromSeconds(30));
        using var served = await host.ExchangeAsync(idp.IdToken("patient"));
        Assert.Equal(HttpStatusCode.OK, served.StatusCode);
        Assert.Equal(3, jwks.Fetches);
    }

    [Theory]
    [MemberData(nameof(Hosts))]
    public async Task Concurrent_first_uses_share_one_fetch_in_flight(HostKind kind)
    {
        var idp = new TestIdp();
        await using var jwks = await JwksServer.StartAsync(() => idp.JwksPath);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        jwks.Gate = gate;
        await using var host = await TokenServiceTestHost.StartAsync(kind, new Dictionary<string, string?>
        {
            ["Idp:JwksPath"] = null,
            ["Idp:JwksUri"] = jwks.Url,
            // No interval at all: only the sharing of the fetch in flight keeps this to one fetch.
            ["Idp:JwksRefetchInterval"] = "00:00:00",
        }, idp: idp);

        var logins = Enumerable.Range(0, 12).Select(i => Task.Run(async () =>
        {
            using var response = await host.ExchangeAsync(idp.IdToken("together-" + i));
            return response.StatusCode;
        })).ToList();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (Volatile.Read(ref jwks.Fetches) == 0 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20);
        }

        await Task.Delay(300); // the others arrive and join the fetch in flight
        jwks.Gate = null;
        gate.SetResult();
        Assert.All(await Task.WhenAll(logins), s => Assert.Equal(HttpStatusCode.OK, s));
        Assert.Equal(1, jwks.Fetches);
    }

    [Fact]
    public async Task A_caller_that_gives_up_does_not_end_the_fetch_the_others_wait_for()
    {
        using var idp = new TestIdp();
        await using var jwks = await JwksServer.StartAsync(() => idp.JwksPath);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        jwks.Gate = gate;
        using var resolver = Resolver(jwks.Url, TimeProvider.System, TimeSpan.FromMinutes(1));

        using var giveUp = new CancellationTokenSource();
        var abandoned = resolver.ResolveAsync(idp.RsaKid, giveUp.Token).AsTask();
        var patient = resolver.ResolveAsync(idp.RsaKid, CancellationToken.None).AsTask();
        giveUp.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => abandoned);

        gate.SetResult();
        var resolution = await patient;
        Assert.Equal(KeyResolution.Found, resolution);
        Assert.Equal(1, jwks.Fetches);
    }

    [Fact]
    public async Task A_jwks_over_64_kib_or_over_100_keys_is_a_failed_fetch()
    {
        using var idp = new TestIdp();
        await using var jwks = await JwksServer.StartAsync(() => idp.JwksPath);
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var interval = TimeSpan.FromSeconds(30);
        using var resolver = Resolver(jwks.Url, time, interval);
        var rsa = JsonNode.Parse(File.ReadAllText(idp.JwksPath))!["keys"]![0]!;

        byte[] Set(int keys, int padding = 0)
        {
            var array = new JsonArray();
            for (var i = 0; i < keys; i++)
            {
                var key = rsa.DeepClone();
                if (i > 0)
                {
                    key["kid"] = "extra-" + i;
                }

                array.Add(key);
            }

            var set = new JsonObject { ["keys"] = array };
            if (padding > 0)
            {
                set["padding"] = new string('x', padding);
            }

            return Encoding.UTF8.GetBytes(set.ToJsonString());
        }

        // Sent chunked, without Content-Length: the body itself is read only up to the limit.
        jwks.Body = Set(1, padding: 64 * 1024);
        Assert.True((await resolver.ResolveAsync(idp.RsaKid, CancellationToken.None)) == KeyResolution.Unavailable);

        time.Advance(interval);
        jwks.Body = Set(101);
        Assert.True(jwks.Body.Length < 64 * 1024);
        Assert.True((await resolver.ResolveAsync(idp.RsaKid, CancellationToken.None)) == KeyResolution.Unavailable);

        time.Advance(interval);
        jwks.Body = Set(100);
        Assert.Equal(KeyResolution.Found, await resolver.ResolveAsync(idp.RsaKid, CancellationToken.None));
        Assert.Equal(3, jwks.Fetches);

        // A JWKS file over the limit fails the same way.
        var big = Path.Combine(Path.GetTempPath(), "big-jwks-" + Guid.NewGuid().ToString("N") + ".json");
        await File.WriteAllBytesAsync(big, Set(1, padding: 64 * 1024));
        try
        {
            using var fromFile = new JwksConfigurationManager(
                new JwksSource("file", null, big, interval, TimeSpan.FromHours(1)), time,
                Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
            Assert.Equal(KeyResolution.Unavailable, await fromFile.ResolveAsync(idp.RsaKid, CancellationToken.None));
        }
        finally
        {
            File.Delete(big);
        }
    }

    private static JwksConfigurationManager Resolver(string url, TimeProvider time, TimeSpan refetchInterval) =>
        new(new JwksSource("idp", url, null, refetchInterval, TimeSpan.FromHours(1)), time,
            Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance, new PlainHttpClientFactory());

    private sealed class PlainHttpClientFactory : IHttpClientFactory
    {
        public HttpClient CreateClient(string name) => new();
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
