using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace TokenService.Validation;

/// <summary>
/// The Shared Signals stream of one session-check scheme as an ASP.NET Core health check
/// (<see cref="SharedSignalsHealthChecksBuilderExtensions.AddTokenServiceSharedSignals"/>): healthy while the stream is
/// (its polls or pushes and verifications within the health window, docs/shared-signals.md "The receiver"), and the
/// failure status given (Degraded by default) while it is not. An unhealthy stream is not an outage: the session check
/// then holds cached statuses to <c>StatusCacheDuration</c> and introspects again (bounded staleness), so revocations
/// still take effect within that time; the check says that operators should look, not that the API must stop.
/// </summary>
internal sealed class SharedSignalsHealthCheck(SharedSignalsReceiver receiver, SharedSignalsState state, HealthStatus failureStatus) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        if (!state.Enabled)
        {
            return Task.FromResult(HealthCheckResult.Healthy(
                "No Shared Signals stream (Delivery None): session statuses are cached for StatusCacheDuration."));
        }

        if (receiver.StreamId is not { } streamId)
        {
            return Task.FromResult(new HealthCheckResult(failureStatus,
                "No Shared Signals stream yet: the token service has not answered its set-up; session statuses are cached for StatusCacheDuration."));
        }

        var data = new Dictionary<string, object> { ["stream_id"] = streamId };
        return Task.FromResult(receiver.IsHealthy
            ? HealthCheckResult.Healthy($"Shared Signals stream {streamId} is healthy.", data)
            : new HealthCheckResult(failureStatus,
                $"Shared Signals stream {streamId} is not healthy (no poll, push or verification within its window): session statuses are cached for StatusCacheDuration.",
                data: data));
    }
}
