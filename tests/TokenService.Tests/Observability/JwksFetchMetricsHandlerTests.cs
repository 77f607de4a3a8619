using System.Net;
using TokenService.Diagnostics;

namespace TokenService.Tests.Observability;

/// <summary>The JWKS fetch histogram, measured at the HTTP layer whatever resolver sends the request.</summary>
public sealed class JwksFetchMetricsHandlerTests
{
    private sealed class Answer(Func<HttpRequestMessage, HttpResponseMessage> answer) : HttpMessageHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
            Task.FromResult(answer(request));
    }

    private static async Task FetchAsync(string url, Func<HttpRequestMessage, HttpResponseMessage> answer)
    {
        using var client = new HttpClient(new JwksFetchMetricsHandler { InnerHandler = new Answer(answer) });
        using var response = await client.GetAsync(url);
    }

    [Fact]
    public async Task Each_fetch_is_timed_with_its_host_and_status_and_a_failed_status_is_its_error_type()
    {
        using var telemetry = new TelemetryCapture();
        var host = "jwks-" + Guid.NewGuid().ToString("N")[..8] + ".test"; // ours alone among parallel tests
        await FetchAsync($"https://{host}/keys", _ => new HttpResponseMessage(HttpStatusCode.OK));
        await FetchAsync($"https://{host}/keys", _ => new HttpResponseMessage(HttpStatusCode.ServiceUnavailable));

        var server = (TokenServiceMetrics.Tags.ServerAddress, host);
        Assert.Equal(2, telemetry.HistogramCount("tokenservice.idp.jwks.fetch.duration", server));
        Assert.Equal(1, telemetry.HistogramCount("tokenservice.idp.jwks.fetch.duration", server, (TokenServiceMetrics.Tags.ErrorType, "503")));
        var failed = telemetry.Last("tokenservice.idp.jwks.fetch.duration")!.MetricPoints
            .Single(p => TelemetryCapture.TagsOf(p).GetValueOrDefault(TokenServiceMetrics.Tags.ErrorType) as string == "503"
                && TelemetryCapture.TagsOf(p)[TokenServiceMetrics.Tags.ServerAddress] as string == host);
        Assert.Equal(503, TelemetryCapture.TagsOf(failed)[TokenServiceMetrics.Tags.HttpStatusCode]);
    }

    [Fact]
    public async Task An_unreachable_jwks_is_timed_with_the_exception_as_its_error_type()
    {
        using var telemetry = new TelemetryCapture();
        var host = "jwks-" + Guid.NewGuid().ToString("N")[..8] + ".test";
        await Assert.ThrowsAsync<HttpRequestException>(() => FetchAsync($"https://{host}/keys", _ => throw new HttpRequestException("refused")));
        Assert.Equal(1, telemetry.HistogramCount("tokenservice.idp.jwks.fetch.duration",
            (TokenServiceMetrics.Tags.ServerAddress, host), (TokenServiceMetrics.Tags.ErrorType, typeof(HttpRequestException).FullName!)));
    }
}
