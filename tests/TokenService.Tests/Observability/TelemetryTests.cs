using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using TokenService.Diagnostics;
using TokenService.Tests.Infrastructure;
using static TokenService.Tests.Infrastructure.TokenServiceTestHost;

namespace TokenService.Tests.Observability;

/// <summary>Metrics and spans of token exchange, refresh, reuse and IdP events, through the standalone host.</summary>
public sealed class TelemetryTests : TelemetryTestsBase
{
    protected override HostKind Kind => HostKind.Standalone;
}

/// <summary>The same through the Functions app.</summary>
public sealed class TelemetryTestsOnFunctions : TelemetryTestsBase
{
    protected override HostKind Kind => HostKind.Functions;
}

/// <summary>
/// Each test starts its own host, whose instruments are its own (one <see cref="TokenServiceMetrics"/> per service
/// provider, on a meter of its IMeterFactory): the <see cref="MetricCollector{T}"/>s bound to them see this test's
/// measurements alone, so counts are exact. Spans go to the process-wide activity source and are found by the trace
/// id of a parent span the test opens around its requests.
/// </summary>
public abstract class TelemetryTestsBase : IAsyncLifetime
{
    private const string Secret = "otel-secret-123";

    private readonly string _clientId = "otel-" + Guid.NewGuid().ToString("N")[..12];
    private readonly TelemetryCapture _telemetry = new();
    private TokenServiceTestHost _host = null!;
    private MetricCollector<long> _issued = null!;
    private MetricCollector<long> _refreshed = null!;
    private MetricCollector<long> _reuse = null!;
    private MetricCollector<long> _evicted = null!;
    private MetricCollector<long> _rejected = null!;
    private MetricCollector<long> _endedByIdpEvent = null!;
    private MetricCollector<double> _signing = null!;
    private MetricCollector<double> _store = null!;

    protected abstract HostKind Kind { get; }

    public async Task InitializeAsync()
    {
        _host = await StartAsync(Kind, new Dictionary<string, string?>
        {
            ["Idp:UserIdClaim"] = "oid",
            ["TokenService:MaxSessionsPerUser"] = "2",
            ["Clients:5:ClientId"] = _clientId,
            ["Clients:5:Type"] = "confidential",
            ["Clients:5:Secret"] = Secret,
            ["Clients:5:AllowedAudiences:0"] = "api://orders",
            ["Clients:5:AllowedScopes:0"] = "orders.read",
        });
        var metrics = _host.Metrics();
        _issued = new(metrics.TokensIssued);
        _refreshed = new(metrics.TokensRefreshed);
        _reuse = new(metrics.RefreshTokenReuse);
        _evicted = new(metrics.SessionsEvicted);
        _rejected = new(metrics.IdTokensRejected);
        _endedByIdpEvent = new(metrics.SessionsEndedByIdpEvent);
        _signing = new(metrics.SigningDuration);
        _store = new(metrics.StoreDuration);
    }

    public async Task DisposeAsync()
    {
        foreach (var collector in new IDisposable[] { _issued, _refreshed, _reuse, _evicted, _rejected, _endedByIdpEvent, _signing, _store })
        {
            collector.Dispose();
        }

        await _host.DisposeAsync();
        _telemetry.Dispose();
    }

    private KeyValuePair<string, object?> Client => new(TokenServiceMetrics.Tags.ClientId, _clientId);

    /// <summary>The sum of a counter's measurements (every one of them must carry this test's client id).</summary>
    private long Sum(MetricCollector<long> counter)
    {
        var measurements = counter.GetMeasurementSnapshot();
        Assert.All(measurements, m => Assert.True(m.ContainsTags(Client), $"{counter.Instrument?.Name} recorded without client {_clientId}"));
        return measurements.Sum(m => m.Value);
    }

    private async Task<(string Oid, JsonNode Response)> ExchangeAsync(string? oid = null)
    {
        oid ??= Guid.NewGuid().ToString();
        using var response = await _host.ExchangeAsync(_host.Idp.IdToken("pairwise-" + oid, c => c["oid"] = oid), _clientId, Secret);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, body);
        return (oid, JsonNode.Parse(body)!);
    }

    [Fact]
    public async Task Introspections_are_counted_per_resource_server_and_by_whether_the_token_was_active()
    {
        using var introspected = new MetricCollector<long>(_host.Metrics().TokensIntrospected);
        var (_, login) = await ExchangeAsync();
        var accessToken = login["access_token"]!.GetValue<string>();

        Assert.True(await _host.IsActiveAsync(accessToken));
        Assert.True(await _host.IsActiveAsync(accessToken));
        Assert.False(await _host.IsActiveAsync("not-a-token"));

        var measurements = introspected.GetMeasurementSnapshot();
        var api = new KeyValuePair<string, object?>(TokenServiceMetrics.Tags.ClientId, "api");
        Assert.All(measurements, m => Assert.True(m.ContainsTags(api)));
        Assert.Equal(2, measurements.Where(m => m.ContainsTags(new KeyValuePair<string, object?>(TokenServiceMetrics.Tags.TokenActive, "true"))).Sum(m => m.Value));
        Assert.Equal(1, measurements.Where(m => m.ContainsTags(new KeyValuePair<string, object?>(TokenServiceMetrics.Tags.TokenActive, "false"))).Sum(m => m.Value));
    }

    [Fact]
    public async Task A_token_exchange_counts_an_issued_token_times_signing_and_store_and_records_a_span()
    {
        using var parent = TelemetryCapture.TestSource.StartActivity("test")!;
        await ExchangeAsync();

        Assert.Equal(1, Sum(_issued));
        Assert.NotEmpty(_signing.GetMeasurementSnapshot());
        Assert.Contains(_store.GetMeasurementSnapshot(), m => m.ContainsTags(new KeyValuePair<string, object?>(TokenServiceMetrics.Tags.Operation, "commit")));
        Assert.Equal("s", _signing.Instrument?.Unit);
        Assert.Equal("{token}", _issued.Instrument?.Unit);

        var span = Assert.Single(await _telemetry.SpansOfAsync(parent, TokenServiceDiagnostics.Spans.TokenExchange), s => s.OperationName == TokenServiceDiagnostics.Spans.TokenExchange);
        Assert.Equal(_clientId, span.GetTagItem(TokenServiceMetrics.Tags.ClientId));
        Assert.Equal(200, span.GetTagItem(TokenServiceMetrics.Tags.HttpStatusCode));
        Assert.NotEqual(ActivityStatusCode.Error, span.Status);

        // The key gauges read the cached key set of this host, on this host's meter.
        using var activeAge = new MetricCollector<double>(_host.Metrics().Meter, "tokenservice.keys.active_age");
        activeAge.RecordObservableInstruments();
        Assert.Contains(activeAge.GetMeasurementSnapshot(), m => m.Value >= 0);
    }

    [Fact]
    public async Task A_rejected_id_token_is_counted_by_reason_and_its_span_carries_the_oauth_error()
    {
        using var parent = TelemetryCapture.TestSource.StartActivity("test")!;
        using var response = await _host.ExchangeAsync("not-a-jwt", _clientId, Secret);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);

        var rejected = Assert.Single(_rejected.GetMeasurementSnapshot());
        Assert.True(rejected.ContainsTags(Client));
        Assert.Equal(1, rejected.Value);
        Assert.False(string.IsNullOrEmpty(rejected.Tags[TokenServiceMetrics.Tags.Reason] as string));
        Assert.Equal(0, Sum(_issued));

        var span = Assert.Single(await _telemetry.SpansOfAsync(parent, TokenServiceDiagnostics.Spans.TokenExchange), s => s.OperationName == TokenServiceDiagnostics.Spans.TokenExchange);
        Assert.Equal(ActivityStatusCode.Error, span.Status);
        Assert.Equal("invalid_request", span.GetTagItem(TokenServiceDiagnostics.OAuthErrorTag));
    }

    [Fact]
    public async Task A_refresh_counts_a_refreshed_token_and_records_a_refresh_span()
    {
        var (_, login) = await ExchangeAsync();
        using var parent = TelemetryCapture.TestSource.StartActivity("test")!;
        using var refresh = await _host.RefreshAsync(login["refresh_token"]!.GetValue<string>(), _clientId, Secret);
        Assert.Equal(HttpStatusCode.OK, refresh.StatusCode);

        Assert.Equal(1, Sum(_refreshed));
        Assert.Equal(0, Sum(_reuse));
        var span = Assert.Single(await _telemetry.SpansOfAsync(parent, TokenServiceDiagnostics.Spans.Refresh), s => s.OperationName == TokenServiceDiagnostics.Spans.Refresh);
        Assert.Equal(_clientId, span.GetTagItem(TokenServiceMetrics.Tags.ClientId));
        Assert.Equal(200, span.GetTagItem(TokenServiceMetrics.Tags.HttpStatusCode));
    }

    [Fact]
    public async Task Refresh_token_reuse_is_counted_and_its_refresh_span_is_marked_failed()
    {
        var (_, login) = await ExchangeAsync();
        var first = login["refresh_token"]!.GetValue<string>();
        using (var rotated = await _host.RefreshAsync(first, _clientId, Secret))
        {
            Assert.Equal(HttpStatusCode.OK, rotated.StatusCode);
        }

        using var parent = TelemetryCapture.TestSource.StartActivity("test")!;
        using var reuse = await _host.RefreshAsync(first, _clientId, Secret);
        await AssertOAuthErrorAsync(reuse, "invalid_grant");

        Assert.Equal(1, Sum(_reuse));
        Assert.Equal(1, Sum(_refreshed));
        var span = Assert.Single(await _telemetry.SpansOfAsync(parent, TokenServiceDiagnostics.Spans.Refresh), s => s.OperationName == TokenServiceDiagnostics.Spans.Refresh);
        Assert.Equal(ActivityStatusCode.Error, span.Status);
        Assert.Equal("invalid_grant", span.GetTagItem(TokenServiceDiagnostics.OAuthErrorTag));
    }

    [Fact]
    public async Task Sessions_beyond_the_per_user_limit_are_counted_as_evicted()
    {
        var oid = Guid.NewGuid().ToString();
        for (var i = 0; i < 3; i++)
        {
            await ExchangeAsync(oid);
        }

        Assert.Equal(3, Sum(_issued));
        Assert.Equal(1, Sum(_evicted));
    }

    [Fact]
    public async Task An_idp_event_counts_the_sessions_it_ended_by_source_and_type_and_records_a_span()
    {
        var oid = Guid.NewGuid().ToString();
        await ExchangeAsync(oid);
        await ExchangeAsync(oid);

        using var parent = TelemetryCapture.TestSource.StartActivity("test")!;
        var cloudEvent = new JsonObject
        {
            ["specversion"] = "1.0",
            ["id"] = Guid.NewGuid().ToString(),
            ["source"] = "idp",
            ["type"] = "TokenService.Idp.AccountDisabled",
            ["data"] = new JsonObject { ["userId"] = oid },
        };
        using var request = new HttpRequestMessage(HttpMethod.Post, "/events/idp?key=" + WebhookSecret) { Content = new StringContent(cloudEvent.ToJsonString(), Encoding.UTF8) };
        request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse("application/cloudevents+json");
        using var response = await _host.Client.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);

        var span = Assert.Single(await _telemetry.SpansOfAsync(parent, TokenServiceDiagnostics.Spans.IdpEvents), s => s.OperationName == TokenServiceDiagnostics.Spans.IdpEvents);
        Assert.Equal(1, span.GetTagItem("tokenservice.idp_events.revoked"));
        Assert.Equal(2, span.GetTagItem("tokenservice.idp_events.sessions_ended"));

        // This host's counter: exactly the two sessions the event ended, tagged with the event's source and type.
        var ended = Assert.Single(_endedByIdpEvent.GetMeasurementSnapshot());
        Assert.Equal(2, ended.Value);
        Assert.True(ended.MatchesTags(
            new KeyValuePair<string, object?>(TokenServiceMetrics.Tags.EventSource, "idp"),
            new KeyValuePair<string, object?>(TokenServiceMetrics.Tags.EventType, "account-disabled")));
    }
}
