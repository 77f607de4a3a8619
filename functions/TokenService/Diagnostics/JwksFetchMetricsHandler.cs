using System.Diagnostics;

namespace TokenService.Diagnostics;

/// <summary>
/// Measures every fetch of a JWKS at the HTTP layer (the IdP's keys for ID tokens, the transmitter's for security
/// events): <c>tokenservice.idp.jwks.fetch.duration</c> with the host, the status code and, for failures, error.type.
/// It sits on the named <c>jwks</c> HttpClient, below whatever resolves and caches the keys, so that it measures the
/// same thing whichever resolver (our own, or Microsoft.IdentityModel's ConfigurationManager) issues the request.
/// </summary>
public sealed class JwksFetchMetricsHandler(TokenServiceMetrics metrics) : DelegatingHandler
{
    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        if (!metrics.IdpJwksFetchDuration.Enabled)
        {
            return await base.SendAsync(request, cancellationToken);
        }

        var start = Stopwatch.GetTimestamp();
        var tags = new TagList { { TokenServiceMetrics.Tags.ServerAddress, request.RequestUri?.Host } };
        try
        {
            var response = await base.SendAsync(request, cancellationToken);
            tags.Add(TokenServiceMetrics.Tags.HttpStatusCode, (int)response.StatusCode);
            if (!response.IsSuccessStatusCode)
            {
                // OpenTelemetry HTTP conventions: a failed status is the error type.
                tags.Add(TokenServiceMetrics.Tags.ErrorType, ((int)response.StatusCode).ToString(System.Globalization.CultureInfo.InvariantCulture));
            }

            return response;
        }
        catch (Exception ex)
        {
            tags.Add(TokenServiceMetrics.Tags.ErrorType, ex is OperationCanceledException ? "timeout" : ex.GetType().FullName);
            throw;
        }
        finally
        {
            metrics.IdpJwksFetchDuration.Record(TokenServiceMetrics.SecondsSince(start), tags);
        }
    }
}
