using System.Diagnostics;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;
using TokenService.Diagnostics;

namespace TokenService.Tests.Observability;

/// <summary>
/// An OpenTelemetry SDK pipeline built by a test, as a host builds it, listening to the service's meter and activity
/// source and exporting to memory. Tests run in parallel in one process and the service's meter is static, so a test
/// reads only what it can tell is its own: measurements tagged with its own client id, spans of its own trace.
/// </summary>
public sealed class TelemetryCapture : IDisposable
{
    /// <summary>The source of the parent span a test opens around its requests.</summary>
    public static readonly ActivitySource TestSource = new("TokenService.Tests.Observability");

    private readonly MeterProvider _meters;
    private readonly TracerProvider _tracer;

    public TelemetryCapture()
    {
        _meters = Sdk.CreateMeterProviderBuilder().AddMeter(TokenServiceDiagnostics.Name).AddInMemoryExporter(Metrics).Build()!;
        _tracer = Sdk.CreateTracerProviderBuilder().AddSource(TokenServiceDiagnostics.Name, TestSource.Name).AddInMemoryExporter(Spans).Build()!;
    }

    public List<MetricSnapshot> Metrics { get; } = [];

    public List<Activity> Spans { get; } = [];

    /// <summary>Collects now; cumulative temporality, so the last snapshot of an instrument holds its totals.</summary>
    public void Flush()
    {
        _meters.ForceFlush();
        _tracer.ForceFlush();
    }

    /// <summary>The sum of a counter's points whose tags include every one of <paramref name="tags"/>.</summary>
    public long CounterSum(string name, params (string Key, string Value)[] tags)
    {
        Flush();
        lock (Metrics)
        {
            var last = Metrics.LastOrDefault(m => m.Name == name);
            return last is null ? 0 : last.MetricPoints.Where(p => HasTags(p, tags)).Sum(p => p.GetSumLong());
        }
    }

    /// <summary>The number of recordings in a histogram's points whose tags include every one of <paramref name="tags"/>.</summary>
    public long HistogramCount(string name, params (string Key, string Value)[] tags)
    {
        Flush();
        lock (Metrics)
        {
            var last = Metrics.LastOrDefault(m => m.Name == name);
            return last is null ? 0 : last.MetricPoints.Where(p => HasTags(p, tags)).Sum(p => p.GetHistogramCount());
        }
    }

    public MetricSnapshot? Last(string name)
    {
        Flush();
        lock (Metrics)
        {
            return Metrics.LastOrDefault(m => m.Name == name);
        }
    }

    /// <summary>Spans of the trace <paramref name="parent"/> started.</summary>
    public List<Activity> SpansOf(Activity parent)
    {
        Flush();
        lock (Spans)
        {
            return Spans.Where(s => s.TraceId == parent.TraceId && s.Source.Name == TokenServiceDiagnostics.Name).ToList();
        }
    }

    public static IReadOnlyDictionary<string, object?> TagsOf(MetricPoint point)
    {
        var tags = new Dictionary<string, object?>();
        foreach (var tag in point.Tags)
        {
            tags[tag.Key] = tag.Value;
        }

        return tags;
    }

    public void Dispose()
    {
        _meters.Dispose();
        _tracer.Dispose();
    }

    private static bool HasTags(MetricPoint point, (string Key, string Value)[] wanted)
    {
        var tags = TagsOf(point);
        return wanted.All(w => tags.TryGetValue(w.Key, out var v) && Equals(v as string, w.Value));
    }
}
