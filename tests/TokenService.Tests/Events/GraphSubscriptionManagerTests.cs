using System.Diagnostics.Metrics;
using Azure.Core;
using Azure.Core.Pipeline;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using TokenService.Azure.Graph;
using TokenService.Configuration;
using TokenService.Diagnostics;
using TokenService.Events;
using TokenService.Tests.KeyVault;

namespace TokenService.Tests.Events;

/// <summary>
/// The app keeps its Microsoft Graph subscription on users alive: the manager and the real Graph adapter against a
/// Graph stand-in that enforces the documented rules (maximum expiration, 404 once lapsed), on a fake clock.
/// </summary>
public sealed class GraphSubscriptionManagerTests : IDisposable
{
    public const string NotificationUrl = "EventGrid:?azuresubscriptionid=00000000-0000-0000-0000-000000000001&resourcegroup=rg-tokens&partnertopic=graph-users&location=westeurope";
    public const string ClientState = "secretClientState";

    private static readonly TimeSpan Requested = GraphStandIn.MaxLifetime - TimeSpan.FromHours(1); // maximum less the default margin

    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 3, 2, 4, 41, 0, TimeSpan.Zero));
    private readonly GraphStandIn _graph;
    private readonly ServiceProvider _metrics = new ServiceCollection().AddMetrics().BuildServiceProvider();

    public GraphSubscriptionManagerTests() => _graph = new GraphStandIn(_time);

    public void Dispose()
    {
        _metrics.Dispose();
        _graph.Dispose();
    }

    /// <summary>The Graph adapter of the app, its HTTP going to <paramref name="graph"/>; no retries, so an outage shows at once.</summary>
    public static IGraphSubscriptionClient Client(GraphStandIn graph) =>
        new GraphSubscriptionClient(new Uri("https://graph.test"), new RecordingCredential(), new StandInOptions(graph));

    public static Dictionary<string, string?> Settings() => new()
    {
        ["Events:GraphEndpoint"] = "https://graph.test",
        ["Events:GraphClientState"] = ClientState,
        ["Events:GraphSubscription:NotificationUrl"] = NotificationUrl,
    };

    private (GraphSubscriptionManager Manager, GraphSubscriptionHealth Health) NewInstance()
    {
        var options = Options.Create(new EventsOptions
        {
            GraphEndpoint = "https://graph.test",
            GraphClientState = ClientState,
            GraphSubscription = new GraphSubscriptionOptions { NotificationUrl = NotificationUrl },
        });
        var health = new GraphSubscriptionHealth(_time, options, _metrics.GetRequiredService<IMeterFactory>());
        return (new GraphSubscriptionManager(options, health, _time, NullLogger<GraphSubscriptionManager>.Instance, Client(_graph)), health);
    }

    [Fact]
    public async Task A_missing_subscription_is_created_on_users_with_our_urls_and_client_state_for_the_longest_allowed_time()
    {
        var (manager, health) = NewInstance();
        Assert.Equal("unknown", health.Status); // nothing checked yet in this process

        var check = await manager.EnsureAsync(CancellationToken.None);

        Assert.Equal(GraphSubscriptionAction.Created, check.Action);
        var subscription = Assert.Single(_graph.Live);
        Assert.Equal(check.SubscriptionId, subscription.Id);
        Assert.Equal("users", subscription.Resource);
        Assert.Equal("updated,deleted", subscription.ChangeType);
        Assert.Equal(NotificationUrl, subscription.NotificationUrl);
        Assert.Equal(NotificationUrl, subscription.LifecycleNotificationUrl);
        Assert.Equal(ClientState, subscription.ClientState);
        Assert.Equal(_time.GetUtcNow() + Requested, subscription.Expiration);
        Assert.Equal(subscription.Expiration, health.SubscriptionExpiresAt);
        Assert.Equal("ok", health.Status);

        var again = await manager.EnsureAsync(CancellationToken.None);
        Assert.Equal(GraphSubscriptionAction.Current, again.Action);
        Assert.Equal(1, _graph.Created);
        Assert.Equal(0, _graph.BadRequests);
    }

    [Fact]
    public async Task It_is_renewed_to_the_maximum_once_less_than_seven_days_remain_and_not_before()
    {
        var (manager, _) = NewInstance();
        var created = await manager.EnsureAsync(CancellationToken.None);

        _time.Advance(Requested - TimeSpan.FromDays(7) - TimeSpan.FromMinutes(1));
        Assert.Equal(GraphSubscriptionAction.Current, (await manager.EnsureAsync(CancellationToken.None)).Action);
        Assert.Equal(0, _graph.Renewals);

        _time.Advance(TimeSpan.FromMinutes(2));
        var renewed = await manager.EnsureAsync(CancellationToken.None);
        Assert.Equal(GraphSubscriptionAction.Renewed, renewed.Action);
        Assert.Equal(created.SubscriptionId, renewed.SubscriptionId);
        Assert.Equal(_time.GetUtcNow() + Requested, Assert.Single(_graph.Live).Expiration);
        Assert.Equal(0, _graph.BadRequests);
    }

    [Fact]
    public async Task Sixty_days_of_daily_checks_never_let_it_lapse()
    {
        var (manager, health) = NewInstance();
        await manager.EnsureAsync(CancellationToken.None);
        for (var day = 1; day <= 60; day++)
        {
            // Hour by hour through the day: Graph holds a live subscription all the time.
            for (var hour = 0; hour < 24; hour++)
            {
                _time.Advance(TimeSpan.FromHours(1));
                Assert.Single(_graph.Live);
            }

            await manager.EnsureAsync(CancellationToken.None);
            Assert.Equal("ok", health.Status);
        }

        Assert.Equal(1, _graph.Created); // renewed, never lost and recreated
        Assert.True(_graph.Renewals >= 2, $"{_graph.Renewals} renewals in 60 days");
        Assert.Equal(0, _graph.BadRequests);
    }

    [Fact]
    public async Task A_renewal_answered_404_creates_a_new_subscription()
    {
        var (manager, health) = NewInstance();
        var first = await manager.EnsureAsync(CancellationToken.None);
        _time.Advance(Requested - TimeSpan.FromDays(2));
        _graph.AfterNextList = () => _graph.Remove(first.SubscriptionId!); // gone between the list and the renewal

        var check = await manager.EnsureAsync(CancellationToken.None);

        Assert.Equal(GraphSubscriptionAction.Recreated, check.Action);
        var live = Assert.Single(_graph.Live);
        Assert.NotEqual(first.SubscriptionId, live.Id);
        Assert.Equal(live.Id, check.SubscriptionId);
        Assert.Equal(live.Expiration, health.SubscriptionExpiresAt);
    }

    [Fact]
    public async Task A_subscription_that_lapsed_while_the_app_was_down_answers_404_and_is_recreated()
    {
        var (manager, _) = NewInstance();
        var first = await manager.EnsureAsync(CancellationToken.None);
        _time.Advance(Requested + TimeSpan.FromDays(1));

        Assert.Null(await Client(_graph).RenewAsync(first.SubscriptionId!, _time.GetUtcNow().AddDays(1), CancellationToken.None));
        Assert.False(await Client(_graph).ReauthorizeAsync(first.SubscriptionId!, CancellationToken.None));
        var check = await manager.EnsureAsync(CancellationToken.None);

        Assert.Equal(GraphSubscriptionAction.Created, check.Action);
        Assert.NotEqual(first.SubscriptionId, Assert.Single(_graph.Live).Id);
    }

    [Fact]
    public async Task Graph_refuses_an_expiration_beyond_41760_minutes_and_the_manager_never_asks_for_one()
    {
        var request = new GraphSubscriptionRequest("updated,deleted", NotificationUrl, null, "users", _time.GetUtcNow() + GraphStandIn.MaxLifetime + TimeSpan.FromMinutes(1), ClientState);
        await Assert.ThrowsAsync<DependencyUnavailableException>(() => Client(_graph).CreateAsync(request, CancellationToken.None));
        Assert.Equal(1, _graph.BadRequests);

        var (manager, _) = NewInstance();
        await manager.EnsureAsync(CancellationToken.None);
        Assert.Equal(1, _graph.BadRequests);
        Assert.Single(_graph.Live);
    }

    [Fact]
    public async Task Subscription_removed_recreates_it()
    {
        var (manager, health) = NewInstance();
        var first = await manager.EnsureAsync(CancellationToken.None);
        _graph.Remove(first.SubscriptionId!);

        await manager.HandleLifecycleAsync("subscriptionRemoved", first.SubscriptionId, CancellationToken.None);

        var live = Assert.Single(_graph.Live);
        Assert.NotEqual(first.SubscriptionId, live.Id);
        Assert.Equal(live.Expiration, health.SubscriptionExpiresAt);
    }

    [Fact]
    public async Task Reauthorization_required_reauthorizes_then_renews()
    {
        var (manager, health) = NewInstance();
        var first = await manager.EnsureAsync(CancellationToken.None);
        _time.Advance(TimeSpan.FromDays(3)); // far from the renewal window: renewed all the same

        await manager.HandleLifecycleAsync("reauthorizationRequired", first.SubscriptionId, CancellationToken.None);

        Assert.Equal(1, _graph.Reauthorizations);
        Assert.Equal(1, _graph.Renewals);
        var live = Assert.Single(_graph.Live);
        Assert.Equal(first.SubscriptionId, live.Id);
        Assert.Equal(_time.GetUtcNow() + Requested, live.Expiration);
        Assert.Equal(live.Expiration, health.SubscriptionExpiresAt);
    }

    [Fact]
    public async Task Health_says_expiring_under_three_days_and_missing_once_lapsed_while_graph_is_down()
    {
        var (manager, health) = NewInstance();
        await manager.EnsureAsync(CancellationToken.None);
        _graph.Down = true;
        _time.Advance(Requested - TimeSpan.FromDays(3) - TimeSpan.FromMinutes(1));
        await Assert.ThrowsAsync<DependencyUnavailableException>(() => manager.EnsureAsync(CancellationToken.None));
        Assert.Equal("ok", health.Status);

        _time.Advance(TimeSpan.FromMinutes(2));
        Assert.Equal("expiring", health.Status);

        _time.Advance(TimeSpan.FromDays(3));
        Assert.Equal("missing", health.Status);

        _graph.Down = false;
        await manager.EnsureAsync(CancellationToken.None);
        Assert.Equal("ok", health.Status);
    }

    [Fact]
    public async Task Missed_is_counted_and_shown_as_attention_while_handled_kinds_are_not()
    {
        var (manager, health) = NewInstance();
        await manager.EnsureAsync(CancellationToken.None);

        health.RecordLifecycleNotification("reauthorizationRequired");
        await manager.HandleLifecycleAsync("reauthorizationRequired", null, CancellationToken.None);
        Assert.Equal("ok", health.Status); // handled by the app: nothing for an operator

        health.RecordLifecycleNotification("missed");
        await manager.HandleLifecycleAsync("missed", null, CancellationToken.None);
        Assert.Equal(1, health.MissedNotifications);
        Assert.Equal("attention", health.Status);
        _time.Advance(GraphSubscriptionHealth.AttentionFor);
        Assert.Equal("ok", health.Status);
    }

    [Fact]
    public async Task The_expiry_is_a_gauge_in_seconds()
    {
        var (manager, _) = NewInstance();

        // Bound to this test's own meter factory: the gauge of this instance, not of a host another test runs.
        using var expiresIn = new MetricCollector<double>(_metrics.GetRequiredService<IMeterFactory>(), TokenServiceDiagnostics.Name, "tokenservice.idp.graph_subscription.expires_in");

        await manager.EnsureAsync(CancellationToken.None);
        _time.Advance(TimeSpan.FromSeconds(30));
        expiresIn.RecordObservableInstruments();

        // The value is exact on the fake clock.
        Assert.Equal((Requested - TimeSpan.FromSeconds(30)).TotalSeconds, expiresIn.LastMeasurement?.Value);
        Assert.Equal("s", expiresIn.Instrument?.Unit);
    }

    [Fact]
    public async Task Two_instances_racing_at_start_leave_one_subscription()
    {
        var (a, healthA) = NewInstance();
        var (b, healthB) = NewInstance();
        using var barrier = new CountdownEvent(2);
        _graph.ListBarrier = barrier; // both list before either creates: both see none

        await Task.WhenAll(a.EnsureAsync(CancellationToken.None), b.EnsureAsync(CancellationToken.None));

        Assert.Equal(2, _graph.Created);
        var live = Assert.Single(_graph.Live);

        // The next check of either instance agrees on the survivor.
        await a.EnsureAsync(CancellationToken.None);
        await b.EnsureAsync(CancellationToken.None);
        Assert.Equal(live.Expiration, healthA.SubscriptionExpiresAt);
        Assert.Equal(live.Expiration, healthB.SubscriptionExpiresAt);
        Assert.Single(_graph.Live);
    }

    private sealed class StandInOptions : global::Azure.Core.ClientOptions
    {
        public StandInOptions(GraphStandIn graph)
        {
            Retry.MaxRetries = 0;
            Transport = new HttpClientTransport(new HttpClient(graph, disposeHandler: false));
        }
    }
}
