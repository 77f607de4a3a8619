namespace TokenService.Configuration;

/// <summary>Configuration section <c>Events</c>: IdP events delivered by Event Grid (CONTRACT §1, §5).</summary>
public sealed class EventsOptions
{
    public const string SectionName = "Events";

    /// <summary>HTTP header that carries <see cref="WebhookSecret"/>, so that it stays out of URLs and request logs.</summary>
    public const string WebhookKeyHeader = "X-Webhook-Key";

    /// <summary>
    /// Secret every webhook delivery must carry: in the <see cref="WebhookKeyHeader"/> header (set by an Event Grid
    /// static delivery attribute with <c>isSecret: true</c>), or as the query parameter <c>key</c> as a fallback.
    /// Required outside Development.
    /// </summary>
    public string? WebhookSecret { get; set; }

    /// <summary>OpenID Shared Signals transmitter: issuer of its Security Event Tokens.</summary>
    public string? SsfIssuer { get; set; }

    /// <summary>Audience the transmitter puts in SETs for this service (defaults to TokenService:Issuer).</summary>
    public string? SsfAudience { get; set; }

    /// <summary>The transmitter's signing keys: a JWKS URL or a local JWKS file.</summary>
    public string? SsfJwksUri { get; set; }

    public string? SsfJwksPath { get; set; }

    /// <summary>Microsoft Graph endpoint (e.g. https://graph.microsoft.com) for looking up users of UserUpdated notifications; absent: such events are acknowledged without action.</summary>
    public string? GraphEndpoint { get; set; }

    /// <summary>
    /// The <c>clientState</c> given when the Microsoft Graph subscription was created; when set, every Microsoft Graph
    /// notification (change and lifecycle) must carry it, or the delivery is refused with nothing processed.
    /// </summary>
    public string? GraphClientState { get; set; }

    /// <summary>How long processed event ids are remembered (Event Grid retries for up to 24 hours).</summary>
    public TimeSpan DeduplicationWindow { get; set; } = TimeSpan.FromHours(25);

    /// <summary>
    /// How old a SET may be (its <c>iat</c>, RFC 8417 §2.2) and still be acted on; at most <see cref="DeduplicationWindow"/>,
    /// so that a SET is remembered for as long as it is accepted.
    /// </summary>
    public TimeSpan MaxSecurityEventAge { get; set; } = TimeSpan.FromDays(1);

    /// <summary>
    /// Sessions opened up to this long after an event's time still end: event times are often whole seconds (a SET's
    /// <c>iat</c> is a NumericDate, RFC 7519 §2) and clocks differ, so a session opened in the same second as the event
    /// must not survive it.
    /// </summary>
    public TimeSpan EventTimeSkew { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>At most this many processed events are remembered in memory (embedded store); the oldest are forgotten first.</summary>
    public int ProcessedEventCapacity { get; set; } = 100_000;

    internal bool SsfConfigured => !string.IsNullOrWhiteSpace(SsfIssuer) && (!string.IsNullOrWhiteSpace(SsfJwksUri) || !string.IsNullOrWhiteSpace(SsfJwksPath));
}
