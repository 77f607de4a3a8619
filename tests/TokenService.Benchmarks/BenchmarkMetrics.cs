using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using TokenService.Diagnostics;

namespace TokenService.Benchmarks;

/// <summary>
/// The service's instruments on a meter of their own container, as a host has them. Nothing listens in a benchmark, so
/// recording costs what it costs in production without an exporter (an Enabled check per instrument).
/// </summary>
internal static class BenchmarkMetrics
{
    public static TokenServiceMetrics Create() =>
        new(new ServiceCollection().AddMetrics().BuildServiceProvider().GetRequiredService<IMeterFactory>());
}
