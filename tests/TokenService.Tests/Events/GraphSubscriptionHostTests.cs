using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using TokenService.Events;
using TokenService.Tests.Infrastructure;
using static TokenService.Tests.Infrastructure.TokenServiceTestHost;

namespace TokenService.Tests.Events;

/// <summary>
/// The standalone host manages the Graph subscription: created at start, reported by /healthz, and acted on when
/// Graph's lifecycle notifications arrive through the webhook (the same path as the Event Grid partner topic).
/// </summary>
public sealed class GraphSubscriptionHostTests : IAsyncLifetime
{
    private readonly FakeTimeProvider _time = new(DateTimeOffset.UtcNow);
    private readonly GraphStandIn _graph;
    private TokenServiceTestHost _host = null!;

    public GraphSubscriptionHostTests() => _graph = new GraphStandIn(_time);

    public async Task InitializeAsync() =>
        _host = await TokenServiceTestHost.StartAsync(
            HostKind.Standalone,
            GraphSubscriptionManagerTests.Settings(),
            time: _time,
            services: s => s.AddSingleton(GraphSubscriptionManagerTests.Client(_graph)));

    public async Task DisposeAsync()
    {
        await _host.DisposeAsync();
        _graph.Dispose();
    }

    [Fact]
    public async Task The_standalone_host_creates_the_missing_subscription_at_start_and_healthz_reports_it()
    {
        await WaitForAsync(() => _graph.Live.Count == 1 && _host.Services.GetRequiredService<GraphSubscriptionHealth>().Status == "ok");
        Assert.Equal(GraphSubscriptionManagerTests.NotificationUrl, Assert.Single(_graph.Live).NotificationUrl);
        Assert.Equal("ok", await HealthzGraphSubscriptionAsync());

        // Graph is down from here on, so renewals fail: under 3 days before expiry /healthz says "expiring", and stays healthy.
        _graph.Down = true;
        _time.Advance(GraphStandIn.MaxLifetime - TimeSpan.FromDays(2));
        using var response = await _host.Client.GetAsync("/healthz");
        var health = await JsonAsync(response);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("healthy", health.GetProperty("status").GetString());
        Assert.Equal("expiring", health.GetProperty("graphSubscription").GetString());
    }

    [Fact]
    public async Task Lifecycle_notifications_through_the_webhook_reauthorize_recreate_and_count_missed()
    {
        await WaitForAsync(() => _graph.Live.Count == 1);
        var first = Assert.Single(_graph.Live).Id;

        using (var response = await DeliverLifecycleAsync("Microsoft.Graph.SubscriptionReauthorizationRequired", "reauthorizationRequired", first))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        Assert.Equal(1, _graph.Reauthorizations);
        Assert.Equal(first, Assert.Single(_graph.Live).Id);

        _graph.Remove(first);
        using (var response = await DeliverLifecycleAsync("Microsoft.Graph.SubscriptionRemoved", "subscriptionRemoved", first))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        Assert.NotEqual(first, Assert.Single(_graph.Live).Id);
        Assert.Equal("ok", await HealthzGraphSubscriptionAsync());

        using (var response = await DeliverLifecycleAsync("Microsoft.Graph.SubscriptionMissed", "missed", first))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        Assert.Equal(1, _host.Services.GetRequiredService<GraphSubscriptionHealth>().MissedNotifications);
        Assert.Equal("attention", await HealthzGraphSubscriptionAsync());
    }

    private async Task<string?> HealthzGraphSubscriptionAsync()
    {
        using var response = await _host.Client.GetAsync("/healthz");
        return (await JsonAsync(response)).GetProperty("graphSubscription").GetString();
    }

    private Task<HttpResponseMessage> DeliverLifecycleAsync(string type, string lifecycleEvent, string subscriptionId)
    {
        var cloudEvent = new JsonObject
        {
            ["specversion"] = "1.0", ["id"] = Guid.NewGuid().ToString(), ["type"] = type,
            ["source"] = "/tenants/00000000-0000-0000-0000-000000000001/applications/00000000-0000-0000-0000-000000000002",
            ["subject"] = "Subscriptions/" + subscriptionId, ["time"] = _time.GetUtcNow().ToString("O"), ["datacontenttype"] = "application/json",
            ["data"] = new JsonObject
            {
                ["subscriptionId"] = subscriptionId, ["subscriptionExpirationDateTime"] = _time.GetUtcNow().AddHours(1).ToString("O"),
                ["tenantId"] = "00000000-0000-0000-0000-000000000001", ["clientState"] = GraphSubscriptionManagerTests.ClientState, ["lifecycleEvent"] = lifecycleEvent,
            },
        };
        var request = new HttpRequestMessage(HttpMethod.Post, "/events/idp?key=" + WebhookSecret) { Content = new StringContent(cloudEvent.ToJsonString(), Encoding.UTF8) };
        request.Content.Headers.ContentType = System.Net.Http.Headers.MediaTypeHeaderValue.Parse("application/cloudevents+json");
        return _host.Client.SendAsync(request);
    }

    private static async Task WaitForAsync(Func<bool> condition)
    {
        // The hosted service runs its first check in the background as the host starts (real time, bounded).
        for (var i = 0; i < 200 && !condition(); i++)
        {
            await Task.Delay(50);
        }

        Assert.True(condition(), "the start-up check did not finish");
    }
}
