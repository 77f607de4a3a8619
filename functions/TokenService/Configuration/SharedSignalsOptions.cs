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
}
