using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
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
/// Each test has its own confidential client (a fresh client id), so that the measurements it asserts on, tagged with
/// that client id, are its own although other tests run at once on the same static meter; its spans are found by
/// the trace id of a parent span it opens around its requests.
/// </summary>
public abstract class TelemetryTestsBase : IAsyncLifetime
{
    private const string Secret = "otel-secret-123";

    private readonly string _clientId = "otel-" + Guid.NewGuid().ToString("N")[..12];
    private readonly TelemetryCapture _telemetry = new();
    private TokenServiceTestHost _host = null!;

    protected abstract HostKind Kind { get; }

    public async Task InitializeAsync() => _host = await StartAsync(Kind, new Dictionary<string, string?>
    {
        ["Idp:UserIdClaim"] = "oid",
        ["TokenService:MaxSessionsPerUser"] = "2",
        ["Clients:5:ClientId"] = _clientId,
        ["Clients:5:Type"] = "confidential",
        ["Clients:5:Secret"] = Secret,
        ["Clients:5:AllowedAudiences:0"] = "api://orders",
        ["Clients:5:AllowedScopes:0"] = "orders.read",
    });

    public async Task DisposeAsync()
    {
        await _host.DisposeAsync();
        _telemetry.Dispose();
    }

    private (string Key, string Value) Client => (TokenServiceMetrics.Tags.ClientId, _clientId);

    private async Task<(string Oid, JsonNode Response)> ExchangeAsync(string? oid = null)
    {
        oid ??= Guid.NewGuid().ToString();
        using var response = await _host.ExchangeAsync(_host.Idp.IdToken("pairwise-" + oid, c => c["oid"] = oid), _clientId, Secret);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, body);
        return (oid, JsonNode.Parse(body)!);
    }

    [Fact]
    public async Task A_token_exchange_counts_an_issued_token_times_signing_and_store_and_records_a_span()
    {
        using var parent = TelemetryCapture.TestSource.StartActivity("test")!;
        await ExchangeAsync();

        Assert.Equal(1, _telemetry.CounterSum("tokenservice.tokens.issued", Client));
        Assert.True(_telemetry.HistogramCount("tokenservice.signing.duration") >= 1);
        Assert.True(_telemetry.HistogramCount("tokenservice.store.duration", (TokenServiceMetrics.Tags.Operation, "commit")) >= 1);
        Assert.Equal("s", _telemetry.Last("tokenservice.signing.duration")!.Unit);
        Assert.Equal("{token}", _telemetry.Last("tokenservice.tokens.issued")!.Unit);

        var span = Assert.Single(_telemetry.SpansOf(parent), s => s.OperationName == TokenServiceDiagnostics.Spans.TokenExchange);
        Assert.Equal(_clientId, span.GetTagItem(TokenServiceMetrics.Tags.ClientId));
        Assert.Equal(200, span.GetTagItem(TokenServiceMetrics.Tags.HttpStatusCode));
        Assert.NotEqual(ActivityStatusCode.Error, span.Status);

        // The key gauges read the cached key set of this host (and of any other host alive in the process).
        Assert.Contains(_telemetry.Last("tokenservice.keys.active_age")!.MetricPoints, p => p.GetGaugeLastValueDouble() >= 0);
    }

    [Fact]
    public async Task A_rejected_id_token_is_counted_by_reason_and_its_span_carries_the_oauth_error()
    {
        using var parent = TelemetryCapture.TestSource.StartActivity("test")!;
        using var response = await _host.ExchangeAsync("not-a-jwt", _clientId, Secret);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);

        var rejected = _telemetry.Last("tokenservice.id_tokens.rejected")!;
        var point = Assert.Single(rejected.MetricPoints, p => TelemetryCapture.TagsOf(p).GetValueOrDefault(TokenServiceMetrics.Tags.ClientId) as string == _clientId);
        Assert.Equal(1, point.GetSumLong());
        Assert.False(string.IsNullOrEmpty(TelemetryCapture.TagsOf(point)[TokenServiceMetrics.Tags.Reason] as string));
        Assert.Equal(0, _telemetry.CounterSum("tokenservice.tokens.issued", Client));

        var span = Assert.Single(_telemetry.SpansOf(parent), s => s.OperationName == TokenServiceDiagnostics.Spans.TokenExchange);
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

        Assert.Equal(1, _telemetry.CounterSum("tokenservice.tokens.refreshed", Client));
        Assert.Equal(0, _telemetry.CounterSum("tokenservice.refresh_tokens.reuse_detected", Client));
        var span = Assert.Single(_telemetry.SpansOf(parent), s => s.OperationName == TokenServiceDiagnostics.Spans.Refresh);
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

        Assert.Equal(1, _telemetry.CounterSum("tokenservice.refresh_tokens.reuse_detected", Client));
        Assert.Equal(1, _telemetry.CounterSum("tokenservice.tokens.refreshed", Client));
        var span = Assert.Single(_telemetry.SpansOf(parent), s => s.OperationName == TokenServiceDiagnostics.Spans.Refresh);
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

        Assert.Equal(3, _telemetry.CounterSum("tokenservice.tokens.issued", Client));
        Assert.Equal(1, _telemetry.CounterSum("tokenservice.sessions.evicted", Client));
    }

    [Fact]
    public async Task An_idp_event_counts_the_sessions_it_ended_by_source_and_type_and_records_a_span()
    {
        var oid = Guid.NewGuid().ToString();
        await ExchangeAsync(oid);
        await ExchangeAsync(oid);
        var before = _telemetry.CounterSum("tokenservice.sessions.ended_by_idp_event", (TokenServiceMetrics.Tags.EventSource, "idp"), (TokenServiceMetrics.Tags.EventType, "account-disabled"));

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

        var span = Assert.Single(_telemetry.SpansOf(parent), s => s.OperationName == TokenServiceDiagnostics.Spans.IdpEvents);
        Assert.Equal(1, span.GetTagItem("tokenservice.idp_events.revoked"));
        Assert.Equal(2, span.GetTagItem("tokenservice.idp_events.sessions_ended"));

        // Other tests may end sessions with the same kind of event at the same time: ours are at least there.
        var after = _telemetry.CounterSum("tokenservice.sessions.ended_by_idp_event", (TokenServiceMetrics.Tags.EventSource, "idp"), (TokenServiceMetrics.Tags.EventType, "account-disabled"));
        Assert.True(after - before >= 2, $"ended_by_idp_event grew by {after - before}");
    }
}
