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
    /// Events held per stream (in memory, or in Table Storage when configured) until the receiver acknowledges them; past
    /// it the oldest is dropped and counted, so that a receiver that never polls cannot grow the outbox without bound.
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

    /// <summary>
    /// Streams one receiver may have (SSF 1.0 §8.1.1.1: 409 beyond): each instance of a scaled-out API needs its own, as
    /// two instances polling one stream would split its events between them.
    /// </summary>
    public int MaxStreamsPerReceiver { get; set; } = 16;

    /// <summary>A stream not polled, changed or successfully pushed to for this long is deleted by the cleanup.</summary>
    public TimeSpan StreamInactivityTimeout { get; set; } = TimeSpan.FromDays(7);

    /// <summary>
    /// Push: how often each instance's delivery loop looks in the store for events it was not told of (queued by another
    /// instance, or held across a restart). Events this instance queues are pushed at once.
    /// </summary>
    public TimeSpan PushSweepInterval { get; set; } = TimeSpan.FromSeconds(10);
}
