using System.Net;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using TokenService.Diagnostics;
using TokenService.Tests.Infrastructure;

namespace TokenService.Tests.Observability;

/// <summary>
/// The JWKS fetch histogram, measured at the HTTP layer whatever resolver sends the request. Each test's handler records
/// into instruments of its own (<see cref="TestMetrics"/>), so its collector sees its fetches alone.
/// </summary>
public sealed class JwksFetchMetricsHandlerTests
{
    private readonly TokenServiceMetrics _metrics = TestMetrics.Create();

    private sealed class Answer(Func<HttpRequestMessage, HttpResponseMessage> answer) : HttpMessageHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
            Task.FromResult(answer(request));
    }

    private async Task FetchAsync(string url, Func<HttpRequestMessage, HttpResponseMessage> answer)
    {
        using var client = new HttpClient(new JwksFetchMetricsHandler(_metrics) { InnerHandler = new Answer(answer) });
        using var response = await client.GetAsync(url);
    }

    [Fact]
    public async Task Each_fetch_is_timed_with_its_host_and_status_and_a_failed_status_is_its_error_type()
    {
        using var fetches = new MetricCollector<double>(_metrics.IdpJwksFetchDuration);
        const string host = "jwks.test";
        await FetchAsync($"https://{host}/keys", _ => new HttpResponseMessage(HttpStatusCode.OK));
        await FetchAsync($"https://{host}/keys", _ => new HttpResponseMessage(HttpStatusCode.ServiceUnavailable));

        var measurements = fetches.GetMeasurementSnapshot();
        Assert.Equal(2, measurements.Count(m => Equals(m.Tags[TokenServiceMetrics.Tags.ServerAddress], host)));
        var failed = Assert.Single(measurements, m => m.Tags.GetValueOrDefault(TokenServiceMetrics.Tags.ErrorType) is not null);
        Assert.Equal("503", failed.Tags[TokenServiceMetrics.Tags.ErrorType]);
        Assert.Equal(host, failed.Tags[TokenServiceMetrics.Tags.ServerAddress]);
        Assert.Equal(503, failed.Tags[TokenServiceMetrics.Tags.HttpStatusCode]);
        Assert.Equal("s", fetches.Instrument!.Unit);
    }

    [Fact]
    public async Task An_unreachable_jwks_is_timed_with_the_exception_as_its_error_type()
    {
        using var fetches = new MetricCollector<double>(_metrics.IdpJwksFetchDuration);
        const string host = "jwks.test";
        await Assert.ThrowsAsync<HttpRequestException>(() => FetchAsync($"https://{host}/keys", _ => throw new HttpRequestException("refused")));

        var measurement = Assert.Single(fetches.GetMeasurementSnapshot());
        Assert.Equal(host, measurement.Tags[TokenServiceMetrics.Tags.ServerAddress]);
        Assert.Equal(typeof(HttpRequestException).FullName, measurement.Tags[TokenServiceMetrics.Tags.ErrorType]);
    }
}
