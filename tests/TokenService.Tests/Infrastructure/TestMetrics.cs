using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using TokenService.Diagnostics;

namespace TokenService.Tests.Infrastructure;

/// <summary>
/// The service's instruments for a class a test builds outside a host, on a meter of their own container (as each host
/// has), so that a <c>MetricCollector</c> bound to them sees this test's measurements and no other's.
/// </summary>
public static class TestMetrics
{
    public static TokenServiceMetrics Create() =>
        new(new ServiceCollection().AddMetrics().BuildServiceProvider().GetRequiredService<IMeterFactory>());

    /// <summary>The host's own instruments (one <see cref="TokenServiceMetrics"/> per service provider).</summary>
    public static TokenServiceMetrics Metrics(this TokenServiceTestHost host) => host.Services.GetRequiredService<TokenServiceMetrics>();
}
