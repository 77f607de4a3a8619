namespace TokenService.Validation;

/// <summary>How the token service's session events reach this API (<see cref="SharedSignalsReceiverOptions.Delivery"/>).</summary>
public enum SharedSignalsDelivery
{
    /// <summary>No stream: every status is learned by introspection and reused for <see cref="SessionCheckOptions.StatusCacheDuration"/>.</summary>
    None,

    /// <summary>This API polls its stream at the token service (RFC 8936): no endpoint of its own is needed.</summary>
    Poll,

    /// <summary>The token service pushes each event to this API's <see cref="SharedSignalsReceiverOptions.PushPath"/> (RFC 8935).</summary>
    Push,
}

/// <summary>
/// The Shared Signals receiver of the session check (docs/shared-signals.md, "The receiver"): the API keeps an event
/// stream at the token service (SSF 1.0) and drops a session from its status cache as soon as its CAEP
/// <c>session-revoked</c> event arrives. While the stream is healthy (its verification events come back in time), a
/// cached status is trusted until the token expires, so introspection is needed only on a cache miss; otherwise the
/// check falls back to <see cref="SessionCheckOptions.StatusCacheDuration"/>.
/// </summary>
public sealed class SharedSignalsReceiverOptions
{
    /// <summary>None (the default: introspection and bounded staleness only), Poll or Push.</summary>
    public SharedSignalsDelivery Delivery { get; set; } = SharedSignalsDelivery.None;

    /// <summary>Poll: how often the stream is polled (default 2 s, at least 100 ms); the revocation latency of poll mode.</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Push: the path this API serves the token service's pushes on (default <c>/ssf/events</c>); the stream's
    /// <c>endpoint_url</c> is <see cref="SessionCheckOptions.PublicOrigin"/> plus this path, so push needs PublicOrigin.
    /// </summary>
    public string PushPath { get; set; } = "/ssf/events";

    /// <summary>
    /// How often a verification event is requested (SSF 1.0 §8.1.4; default 15 s, at least 1 s). The stream counts as
    /// healthy while the newest answered verification was requested within twice this interval, and that window is how
    /// long a stopped stream goes unnoticed: at twice this interval no more than
    /// <see cref="SessionCheckOptions.StatusCacheDuration"/> (30 s by default), a stopped stream delays a revocation no
    /// more than the receiver's absence would.
    /// </summary>
    public TimeSpan VerificationInterval { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>
    /// The <c>description</c> of the stream this instance adopts or creates (default
    /// <c>"TokenService.Validation " + Environment.MachineName</c>). Each instance of an API needs a stream of its own.
    /// </summary>
    public string StreamDescription { get; set; } = "TokenService.Validation " + Environment.MachineName;

    /// <summary>
    /// How long a revoked session is remembered after its event (default 1 h): at least the longest access-token
    /// lifetime of the token service, so that no token of the session outlives the memory of its end.
    /// </summary>
    public TimeSpan RevokedSessionRetention { get; set; } = TimeSpan.FromHours(1);
}
