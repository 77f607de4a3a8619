using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Azure.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using TokenService.Tests.Infrastructure;
using TokenService.Tests.KeyVault;
using static TokenService.Tests.Infrastructure.TokenServiceTestHost;

namespace TokenService.Tests.Events;

/// <summary>Microsoft.Graph.UserUpdated carries ids only: the user is looked up and sessions end only when the account is disabled.</summary>
public sealed class GraphUserUpdatedTests : IAsyncLifetime
{
    private readonly Dictionary<string, bool> _accounts = new();
    private readonly RecordingCredential _credential = new();
    private WebApplication _graph = null!;
    private Uri _graphUri = null!;
    private TokenServiceTestHost _host = null!;

    public async Task InitializeAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        _graph = builder.Build();
        _graph.MapGet("/v1.0/users/{id}", (HttpContext ctx, string id) =>
            ctx.Request.Headers.Authorization != "Bearer " + FakeKeyVaultServer.Token ? Results.Unauthorized()
            : _accounts.TryGetValue(id, out var enabled) ? Results.Json(new { id, accountEnabled = enabled })
            : Results.NotFound());
        // The host's own Graph client (bearer tokens over https only) addresses the stand-in by an https endpoint; the
        // registered transport carries its requests to the stand-in on loopback.
        var standIn = await Loopback.StartAsync(_graph);
        _graphUri = new Uri("https://graph.test/");
        _host = await TokenServiceTestHost.StartAsync(
            new Dictionary<string, string?> { ["Idp:UserIdClaim"] = "oid", ["Events:GraphEndpoint"] = _graphUri.AbsoluteUri },
            configure: b => b.Services.AddSingleton<TokenCredential>(_credential).AddSingleton(Loopback.Transport(standIn)));
    }

    public async Task DisposeAsync()
    {
        await _host.DisposeAsync();
        await _graph.DisposeAsync();
    }

    private async Task<HttpResponseMessage> UserUpdatedAsync(string oid)
    {
        var cloudEvent = new JsonObject
        {
            ["specversion"] = "1.0", ["id"] = Guid.NewGuid().ToString(), ["source"] = "/tenants/t/applications/a", ["type"] = "Microsoft.Graph.UserUpdated",
            ["time"] = DateTimeOffset.UtcNow.AddSeconds(5).ToString("O"),
            ["data"] = new JsonObject { ["changeType"] = "updated", ["resource"] = $"Users/{oid}", ["resourceData"] = new JsonObject { ["@odata.type"] = "#Microsoft.Graph.User", ["id"] = oid } },
        };
        using var request = new HttpRequestMessage(HttpMethod.Post, "/events/idp?key=" + WebhookSecret) { Content = new StringContent(cloudEvent.ToJsonString(), Encoding.UTF8) };
        request.Content.Headers.ContentType = System.Net.Http.Headers.MediaTypeHeaderValue.Parse("application/cloudevents+json");
        return await _host.Client.SendAsync(request);
    }

    [Fact]
    public async Task A_disabled_account_ends_its_sessions_and_an_enabled_one_keeps_them()
    {
        var disabled = Guid.NewGuid().ToString();
        var enabled = Guid.NewGuid().ToString();
        _accounts[disabled] = false;
        _accounts[enabled] = true;
        var a = await _host.LoginAsync("s-" + disabled, c => c["oid"] = disabled);
        var b = await _host.LoginAsync("s-" + enabled, c => c["oid"] = enabled);

        using (var r1 = await UserUpdatedAsync(disabled))
        {
            Assert.Equal(1, (await JsonAsync(r1)).GetProperty("revoked").GetInt32());
        }

        using (var r2 = await UserUpdatedAsync(enabled))
        {
            Assert.Equal(1, (await JsonAsync(r2)).GetProperty("ignored").GetInt32());
        }

        Assert.False(await _host.IsActiveAsync(a.AccessToken));
        Assert.True(await _host.IsActiveAsync(b.AccessToken));
        Assert.Contains(_credential.Requests, r => r.Scopes.Single() == _graphUri.AbsoluteUri.TrimEnd('/') + "/.default");
    }

    [Fact]
    public async Task A_user_graph_answers_404_for_after_user_updated_is_soft_deleted_and_loses_its_sessions()
    {
        // A default deletion in Entra ID is a soft delete, announced as Microsoft.Graph.UserUpdated; Graph then answers
        // 404 for the user (Event Grid docs, "Microsoft Entra events").
        var deleted = Guid.NewGuid().ToString();
        _accounts[deleted] = true;
        var login = await _host.LoginAsync("s-" + deleted, c => c["oid"] = deleted);
        _accounts.Remove(deleted);

        using var response = await UserUpdatedAsync(deleted);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(1, (await JsonAsync(response)).GetProperty("revoked").GetInt32());
        Assert.False(await _host.IsActiveAsync(login.AccessToken));
    }

    [Fact]
    public async Task When_graph_is_down_the_delivery_fails_so_event_grid_retries()
    {
        var oid = Guid.NewGuid().ToString();
        _accounts[oid] = false;
        var login = await _host.LoginAsync("s-" + oid, c => c["oid"] = oid);
        await _graph.StopAsync();
        using var response = await UserUpdatedAsync(oid);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.True(await _host.IsActiveAsync(login.AccessToken));
    }
}
