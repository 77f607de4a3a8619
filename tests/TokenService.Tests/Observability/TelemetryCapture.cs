using System.Diagnostics;
using OpenTelemetry;
using OpenTelemetry.Trace;
using TokenService.Diagnostics;

namespace TokenService.Tests.Observability;

/// <summary>
/// An OpenTelemetry SDK trace pipeline built by a test, as a host builds it, listening to the service's activity source
/// and exporting to memory. Tests run in parallel in one process on the one activity source, so a test reads only the
/// spans of its own trace. Metrics need no such care: a test binds a <c>MetricCollector</c> to its own host's
/// instruments (<see cref="TokenServiceMetrics"/>, one per service provider).
/// </summary>
public sealed class TelemetryCapture : IDisposable
{
    /// <summary>The source of the parent span a test opens around its requests.</summary>
    public static readonly ActivitySource TestSource = new("TokenService.Tests.Observability");

    private readonly TracerProvider _tracer;

    public TelemetryCapture()
    {
        _tracer = Sdk.CreateTracerProviderBuilder().AddSource(TokenServiceDiagnostics.Name, TestSource.Name).AddInMemoryExporter(Spans).Build()!;
    }

    public List<Activity> Spans { get; } = [];

    /// <summary>Spans of the trace <paramref name="parent"/> started.</summary>
    public List<Activity> SpansOf(Activity parent)
    {
        _tracer.ForceFlush();
        lock (Spans)
        {
            return Spans.Where(s => s.TraceId == parent.TraceId && s.Source.Name == TokenServiceDiagnostics.Name).ToList();
        }
    }

    /// <summary>
    /// Spans of the trace <paramref name="parent"/> started, once one named <paramref name="operationName"/> has ended:
    /// a request's span ends when its endpoint returns, which can be just after the client has read the answer.
    /// </summary>
    public async Task<List<Activity>> SpansOfAsync(Activity parent, string operationName)
    {
        using var guard = new CancellationTokenSource(TimeSpan.FromSeconds(10)); // a hang guard, not pacing
        while (true)
        {
            var spans = SpansOf(parent);
            if (spans.Exists(s => s.OperationName == operationName) || guard.IsCancellationRequested)
            {
                return spans;
            }

            await Task.Delay(5, CancellationToken.None);
        }
    }

    public void Dispose() => _tracer.Dispose();
}
