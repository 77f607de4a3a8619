using System.Net;
using System.Net.Http.Headers;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using TokenService.Tests.Infrastructure;
using static TokenService.Tests.Infrastructure.TokenServiceTestHost;

namespace TokenService.Tests.Http;

/// <summary>
/// The README walkthrough on the embedded defaults (Development, development IdP and clients), on both hosts:
/// the development clients can get a token for the session endpoints.
/// </summary>
public sealed class DevelopmentDefaultsTests
{
    private const string DevelopmentIssuer = Hosting.TokenServiceServiceCollectionExtensions.DevelopmentIssuer;

    [Theory]
    [InlineData(HostKind.Standalone)]
    [InlineData(HostKind.Functions)]
    public async Task The_development_clients_can_ask_for_a_token_for_the_session_endpoints(HostKind kind)
    {
        var keyDir = Path.Combine(Path.GetTempPath(), "ts-dev-" + Guid.NewGuid().ToString("N"));
        var settings = new Dictionary<string, string?> { ["Keys:DevelopmentKeyPath"] = Path.Combine(keyDir, "signing-keys.json") };
        Microsoft.Extensions.Hosting.IHost host;
        HttpClient client;
        if (kind == HostKind.Standalone)
        {
            var app = Server.TokenServiceHost.Build(["--environment", "Development", "--urls", "http://127.0.0.1:0"], builder => builder.Configuration.AddInMemoryCollection(settings));
            client = new HttpClient { BaseAddress = await Loopback.StartAsync(app) };
            host = app;
        }
        else
        {
            host = FunctionsAppFactory.Build("Development", settings);
            await FunctionsAppFactory.ValidateStartupAsync(host);
            client = new HttpClient(new FunctionsHttpHandler(host.Services)) { BaseAddress = new Uri("http://functions.test/") };
        }

        try
        {
            using var minted = await client.PostAsync("/dev-idp/id-token", new FormUrlEncodedContent([new("sub", "alice")]));
            var idToken = (await JsonAsync(minted)).GetProperty("id_token").GetString()!;
            using var exchange = new HttpRequestMessage(HttpMethod.Post, "/oauth2/token")
            {
                Content = new FormUrlEncodedContent(
                [
                    new("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
                    new("subject_token", idToken),
                    new("subject_token_type", "urn:ietf:params:oauth:token-type:id_token"),
                    new("audience", DevelopmentIssuer),
                ]),
            };
            exchange.Headers.Authorization = Basic("dev-confidential", "dev-confidential-secret");
            using var issued = await client.SendAsync(exchange);
            var json = await JsonAsync(issued);
            Assert.True(issued.StatusCode == HttpStatusCode.OK, json.ToString());

            using var list = new HttpRequestMessage(HttpMethod.Get, "/sessions");
            list.Headers.Authorization = new AuthenticationHeaderValue("Bearer", json.GetProperty("access_token").GetString());
            using var sessions = await client.SendAsync(list);
            Assert.Equal(HttpStatusCode.OK, sessions.StatusCode);
            Assert.Single((await JsonAsync(sessions)).GetProperty("sessions").EnumerateArray());
        }
        finally
        {
            client.Dispose();
            if (host is WebApplication web)
            {
                await web.StopAsync();
                await web.DisposeAsync();
            }
            else
            {
                host.Dispose();
            }

            if (Directory.Exists(keyDir))
            {
                Directory.Delete(keyDir, recursive: true);
            }
        }
    }
}
