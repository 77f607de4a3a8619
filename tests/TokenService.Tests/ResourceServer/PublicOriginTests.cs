using System.Net;
using System.Net.Http.Headers;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TokenService.Tests.Dpop;
using TokenService.Tests.Infrastructure;
using TokenService.Validation;
using static TokenService.Tests.Infrastructure.TokenServiceTestHost;

namespace TokenService.Tests.ResourceServer;

/// <summary>
/// The resource-server library checks a DPoP proof's <c>htu</c> (RFC 9449 §4.3 item 9) against
/// <see cref="SessionCheckOptions.PublicOrigin"/>, which is required outside Development, never against a
/// <c>Host</c> header the client chose; in Development the Host is still used, with a warning once.
/// </summary>
public sealed class PublicOriginTests
{
    private static WebApplication BuildApi(string environment, HttpMessageHandler backchannel, Uri? publicOrigin, CapturingLoggerProvider? logs = null)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { EnvironmentName = environment });
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        logs?.AddTo(builder.Services);
        builder.Services.AddTestResourceServer("api://orders", backchannel, TimeSpan.Zero);
        builder.Services.Configure<SessionCheckOptions>(JwtBearerDefaults.AuthenticationScheme, o => o.PublicOrigin = publicOrigin);
        builder.Services.AddAuthorization();
        var api = builder.Build();
        api.UseAuthentication();
        api.UseAuthorization();
        api.MapGet("/orders", () => Results.Ok()).RequireAuthorization();
        return api;
    }

    internal static async Task<string> BoundAccessTokenAsync(TokenServiceTestHost host, DpopKey key)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/oauth2/token")
        {
            Content = new FormUrlEncodedContent(
            [
                new("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
                new("subject_token", host.Idp.IdToken("rs-origin-" + Guid.NewGuid().ToString("N"))),
                new("subject_token_type", "urn:ietf:params:oauth:token-type:id_token"),
                new("audience", "api://orders"),
            ]),
        };
        request.Headers.Authorization = Basic("web", WebSecret);
        request.Headers.TryAddWithoutValidation("DPoP", key.Proof("POST", Issuer + "/oauth2/token", TimeProvider.System.GetUtcNow()));
        using var response = await host.Client.SendAsync(request);
        var json = await JsonAsync(response);
        Assert.True(response.StatusCode == HttpStatusCode.OK, json.ToString());
        return json.GetProperty("access_token").GetString()!;
    }

    private static async Task<HttpResponseMessage> CallWithHostAsync(HttpClient client, string hostHeader, string token, string proof)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/orders");
        request.Headers.Host = hostHeader;
        request.Headers.Authorization = new AuthenticationHeaderValue("DPoP", token);
        request.Headers.TryAddWithoutValidation("DPoP", proof);
        return await client.SendAsync(request);
    }

    [Theory]
    [InlineData("Production")]
    [InlineData("Staging")]
    public async Task Outside_development_an_api_without_public_origin_refuses_to_start_with_one_clear_line(string environment)
    {
        await using var api = BuildApi(environment, new HttpClientHandler(), publicOrigin: null);
        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => api.StartAsync());
        var message = Assert.Single(error.Failures);
        Assert.Contains("PublicOrigin", message, StringComparison.Ordinal);
        Assert.Contains("required outside Development", message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', message);
    }

    [Fact]
    public async Task In_development_an_api_without_public_origin_trusts_host_and_warns_once()
    {
        await using var host = await StartAsync();
        var logs = new CapturingLoggerProvider();
        await using var api = BuildApi("Development", new IssuerRewriteHandler(host.BaseAddress), publicOrigin: null, logs);
        using var client = new HttpClient { BaseAddress = await Loopback.StartAsync(api) };
        using var key = DpopKey.Es256();
        for (var i = 0; i < 2; i++)
        {
            var token = await BoundAccessTokenAsync(host, key);
            using var response = await CallWithHostAsync(client, "api.dev.example", token, key.Proof("GET", "http://api.dev.example/orders", TimeProvider.System.GetUtcNow(), accessToken: token));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        Assert.Single(logs.Entries, e => e.Id.Id == 7002 && e.Level == LogLevel.Warning);
    }

    [Theory]
    [InlineData("evil.example")]
    [InlineData("orders.test.example:8443")]
    [InlineData("ORDERS.TEST.EXAMPLE.")]
    public async Task With_public_origin_a_proof_for_the_host_the_client_sent_is_refused(string hostHeader)
    {
        // The replay this guards against: a proof made for another API (same path) presented with that API's Host header.
        await using var host = await StartAsync();
        await using var api = BuildApi("Production", new IssuerRewriteHandler(host.BaseAddress), ResourceServerSetup.PublicOrigin);
        using var client = new HttpClient { BaseAddress = await Loopback.StartAsync(api) };
        using var key = DpopKey.Es256();
        var token = await BoundAccessTokenAsync(host, key);
        using (var refused = await CallWithHostAsync(client, hostHeader, token, key.Proof("GET", $"http://{hostHeader}/orders", TimeProvider.System.GetUtcNow(), accessToken: token)))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
            Assert.Contains(refused.Headers.WwwAuthenticate, h => h.Scheme == "DPoP" && h.Parameter!.Contains("invalid_dpop_proof", StringComparison.Ordinal));
        }

        using var accepted = await CallWithHostAsync(client, hostHeader, token, key.Proof("GET", new Uri(ResourceServerSetup.PublicOrigin, "/orders").ToString(), TimeProvider.System.GetUtcNow(), accessToken: token));
        Assert.Equal(HttpStatusCode.OK, accepted.StatusCode);
    }
}
