namespace TokenService.Configuration;

/// <summary>
/// Configuration section <c>SharedSignals</c>: the service as an OpenID Shared Signals transmitter of its own session
/// events (docs/shared-signals.md). Off by default: without <see cref="Enabled"/> the stream routes answer 404 and
/// ending a session does nothing more than before.
/// </summary>
public sealed class SharedSignalsOptions
{
    public const string SectionName = "SharedSignals";

    /// <summary>Serve the transmitter metadata, the stream management API and poll delivery; emit session-revoked SETs.</summary>
    public bool Enabled { get; set; }

    /// <summary>
    /// Events held per stream (in memory in this version) until the receiver acknowledges them; past it the oldest is
    /// dropped and counted, so that a receiver that never polls cannot grow the service's memory.
    /// </summary>
    public int MaxEventsPerStream { get; set; } = 1000;

    /// <summary>Most SETs one poll answers (RFC 8936 §2.1 <c>maxEvents</c> is capped to it; one signature per new SET).</summary>
    public int MaxEventsPerPoll { get; set; } = 100;

    /// <summary>Push (RFC 8935): how long one POST to a receiver may take before it counts as failed and is retried.</summary>
    public TimeSpan PushTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Push: the back-off after a stream's first failed delivery; it doubles with each failure in a row.</summary>
    public TimeSpan PushInitialBackoff { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Push: the longest back-off (and the most a receiver's <c>Retry-After</c> is honoured for).</summary>
    public TimeSpan PushMaxBackoff { get; set; } = TimeSpan.FromMinutes(5);
}
