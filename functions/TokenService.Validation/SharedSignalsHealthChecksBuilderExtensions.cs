using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace TokenService.Validation;

/// <summary>Registers the session check's Shared Signals stream with ASP.NET Core health checks.</summary>
public static class SharedSignalsHealthChecksBuilderExtensions
{
    /// <summary>
    /// Adds a health check named <c>tokenservice-shared-signals</c> (with <c>-</c> and the scheme for a scheme other than
    /// <see cref="JwtBearerDefaults.AuthenticationScheme"/>) that reports the Shared Signals stream of the session check
    /// added with <c>AddTokenServiceSessionCheck</c> on <paramref name="scheme"/>: Healthy while the stream is healthy
    /// (or none is configured), <paramref name="failureStatus"/> while it is not or not yet set up. Degraded by default:
    /// the session check stays safe on bounded staleness meanwhile (docs/shared-signals.md, "The receiver").
    /// </summary>
    public static IHealthChecksBuilder AddTokenServiceSharedSignals(
        this IHealthChecksBuilder builder, string scheme = JwtBearerDefaults.AuthenticationScheme, HealthStatus failureStatus = HealthStatus.Degraded)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrEmpty(scheme);
        var name = scheme == JwtBearerDefaults.AuthenticationScheme ? "tokenservice-shared-signals" : "tokenservice-shared-signals-" + scheme;
        return builder.Add(new HealthCheckRegistration(
            name,
            sp => new SharedSignalsHealthCheck(sp.GetRequiredKeyedService<SharedSignalsReceiver>(scheme), sp.GetRequiredKeyedService<SharedSignalsState>(scheme), failureStatus),
            failureStatus,
            tags: ["tokenservice", "shared-signals"]));
    }
}
