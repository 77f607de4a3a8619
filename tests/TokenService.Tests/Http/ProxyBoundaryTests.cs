using System.Net;
using System.Text;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using TokenService.Hosting;
using TokenService.Tests.Infrastructure;
using static TokenService.Tests.Infrastructure.TokenServiceTestHost;

namespace TokenService.Tests.Http;

public sealed class ProxyBoundaryTests(HostFixture fixture) : ProxyBoundaryTests<HostFixture>(fixture);

/// <summary>The same tests against the Functions app (its HTTP functions invoked in-process, the host's hop modelled).</summary>
public sealed class ProxyBoundaryTestsOnFunctions(FunctionsHostFixture fixture) : ProxyBoundaryTests<FunctionsHostFixture>(fixture);

/// <summary>The same tests through a real Functions host, where its Kestrel and its proxy to the worker are in front.</summary>
[RealFunctionsHostTier]
[Collection(RealFunctionsHostCollection.Name)]
public sealed class ProxyBoundaryTestsOnRealHost(RealFunctionsHostFixture fixture) : ProxyBoundaryTests<RealFunctionsHostFixture>(fixture);

/// <summary>
/// What a Functions host in front changes at the edge of a request (docs/api.md, "Under a Functions host"), held on every host: the source
/// address the per-address limits count by, the request size limits and their answers, and the response headers a
/// server adds. Each was first measured through the real host; the in-process tiers keep the same rule where no host is
/// available.
/// </summary>
public abstract class ProxyBoundaryTests<TFixture>(TFixture fixture) : IClassFixture<TFixture>
    where TFixture : HostFixture
{
    private TokenServiceTestHost Host => fixture.Host;

    /// <summary>
    /// The per-address limit counts the connection's peer. The standalone host never reads <c>X-Forwarded-For</c>; under
    /// a Functions host the host's proxy (YARP's default transform) replaces whatever the client sent with the address
    /// that connected to it, and the worker applies only that. So a client that writes a new <c>X-Forwarded-For</c> on
    /// every request still spends one budget, and a client at another address still has its own.
    /// </summary>
    [Fact]
    public async Task A_client_cannot_buy_a_fresh_address_budget_with_its_own_X_Forwarded_For()
    {
        // Addresses of this test alone (the fixture's other tests come from 127.0.0.1), distinct per run.
        var octet = System.Security.Cryptography.RandomNumberGenerator.GetInt32(100, 150);
        using var guesser = Host.CreateClientFrom(IPAddress.Parse($"127.0.0.{octet}"));
        using var bystander = Host.CreateClientFrom(IPAddress.Parse($"127.0.0.{octet + 100}"));

        // The default budget is 600 a minute, refilled a sixth every 10 s; an unauthenticated spa request is charged to
        // its address. 1,500 requests, each with addresses of its own in the header: if the header bought budgets, all
        // would pass. The bound allows every refill the elapsed time could have brought (elapsed time widens the bound
        // on a slow machine, so it never makes the test fail; it paces nothing).
        const int Sent = 1500;
        var elapsed = System.Diagnostics.Stopwatch.StartNew();
        var passed = 0;
        for (var i = 0; i < Sent; i += 50)
        {
            var batch = await Task.WhenAll(Enumerable.Range(i, 50).Select(n => SpaExchangeAsync(guesser, $"203.0.113.{n % 250}, 198.51.100.{n % 250}")));
            foreach (var response in batch)
            {
                Assert.True(response.StatusCode is HttpStatusCode.BadRequest or HttpStatusCode.TooManyRequests, $"unexpected {(int)response.StatusCode}");
                passed += response.StatusCode == HttpStatusCode.BadRequest ? 1 : 0;
                response.Dispose();
            }
        }

        var refills = (int)Math.Ceiling(elapsed.Elapsed / TimeSpan.FromSeconds(10)) + 1;
        Assert.True(passed <= 600 + (100 * refills), $"{passed} of {Sent} requests with forged X-Forwarded-For headers passed in {elapsed.Elapsed}: the header bought fresh budgets");
        Assert.True(passed < Sent, "no request was refused");

        using var other = await SpaExchangeAsync(bystander, forwardedFor: null);
        await AssertOAuthErrorAsync(other, "invalid_request");
    }

    /// <summary>
    /// Bodies over a route's limit get that route's own error format on every host: the host in front forwards bodies
    /// up to its own limit (100 MB), so the answer is the app's, never the host's.
    /// </summary>
    [Fact]
    public async Task A_body_over_a_routes_limit_gets_413_in_that_routes_error_format()
    {
        using var form = new HttpRequestMessage(HttpMethod.Post, "/oauth2/token")
        {
            Content = new StringContent("grant_type=refresh_token&refresh_token=" + new string('a', 100_000), Encoding.UTF8, "application/x-www-form-urlencoded"),
        };
        form.Headers.Authorization = Basic("web", WebSecret);
        using var formResponse = await Host.Client.SendAsync(form);
        await AssertOAuthErrorAsync(formResponse, "invalid_request", HttpStatusCode.RequestEntityTooLarge);

        using var forceLogout = new HttpRequestMessage(HttpMethod.Post, "/management/users/revoke")
        {
            Content = new StringContent("user_id=" + new string('u', 100_000), Encoding.UTF8, "application/x-www-form-urlencoded"),
        };
        forceLogout.Headers.Authorization = Basic("ops", OpsSecret);
        using var managementResponse = await Host.Client.SendAsync(forceLogout);
        Assert.True(managementResponse.StatusCode == HttpStatusCode.RequestEntityTooLarge, $"got {(int)managementResponse.StatusCode}: {await managementResponse.Content.ReadAsStringAsync()}");
        Assert.Equal("application/problem+json", managementResponse.Content.Headers.ContentType?.MediaType);
    }

    /// <summary>
    /// Request headers over 32 KiB get 431 before any of our code runs, and no answer names the server software. The
    /// standalone host's Kestrel and the Functions worker's are configured alike (<see cref="KestrelLimits"/>); a real
    /// Functions host's own Kestrel has the same header limit by default, and adds <c>Server: Kestrel</c> itself, which
    /// the app cannot remove (docs/api.md, "Under a Functions host").
    /// </summary>
    [Fact]
    public async Task Request_headers_over_32_KiB_are_refused_with_431_and_the_limits_are_the_same_on_every_host()
    {
        if (Host.Kind == HostKind.Functions)
        {
            // In process there is no Kestrel in front: the worker's own Kestrel options are what its server will use.
            var kestrel = Host.Services.GetRequiredService<IOptions<KestrelServerOptions>>().Value;
            Assert.False(kestrel.AddServerHeader);
            Assert.Equal(KestrelLimits.MaxRequestHeadersTotalSize, kestrel.Limits.MaxRequestHeadersTotalSize);
            Assert.Equal(KestrelLimits.MaxRequestBodySize, kestrel.Limits.MaxRequestBodySize);
            return;
        }

        using var request = new HttpRequestMessage(HttpMethod.Get, "/.well-known/openid-configuration");
        request.Headers.Add("X-Padding", new string('p', 40 * 1024));
        using var response = await Host.Client.SendAsync(request);
        Assert.Equal(HttpStatusCode.RequestHeaderFieldsTooLarge, response.StatusCode);

        using var discovery = await Host.Client.GetAsync("/.well-known/openid-configuration");
        Assert.Equal(HttpStatusCode.OK, discovery.StatusCode);
        // One Date header (RFC 9110 §6.6.1), the server's own clock: the hop to the worker does not add a second one.
        var date = Assert.Single(discovery.Headers.GetValues("Date"));
        Assert.InRange(DateTimeOffset.Parse(date, System.Globalization.CultureInfo.InvariantCulture), DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddMinutes(5));
        if (Host.Kind == HostKind.Standalone)
        {
            Assert.False(discovery.Headers.Contains("Server"));
        }
    }

    private static Task<HttpResponseMessage> SpaExchangeAsync(HttpClient client, string? forwardedFor)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/oauth2/token")
        {
            Content = new FormUrlEncodedContent(
            [
                new("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
                new("subject_token", "not-a-token"),
                new("subject_token_type", "urn:ietf:params:oauth:token-type:id_token"),
                new("client_id", "spa"),
            ]),
        };
        request.Headers.Add("Origin", SpaOrigin);
        if (forwardedFor is not null)
        {
            request.Headers.Add("X-Forwarded-For", forwardedFor);
        }

        return client.SendAsync(request);
    }
}
