namespace TokenService.Configuration;

/// <summary>Configuration section <c>Events</c>: IdP events delivered by Event Grid (docs/api.md, "Configuration" and "IdP events").</summary>
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

    /// <summary>
    /// The Microsoft Graph change-notification subscription on <c>users</c> that feeds the Event Grid partner topic:
    /// when <see cref="GraphSubscriptionOptions.NotificationUrl"/> is set the app creates it, renews it and recreates it
    /// (<see cref="Events.GraphSubscriptionManager"/>), as its own identity.
    /// </summary>
    public GraphSubscriptionOptions GraphSubscription { get; set; } = new();

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

/// <summary>
/// Configuration section <c>Events:GraphSubscription</c>. Microsoft Graph subscriptions on <c>users</c> live at most
/// <see cref="MaxLifetime"/> (41,760 minutes; Graph docs, "subscription resource type", maximum length of subscription
/// per resource type); the app renews its own before then.
/// </summary>
public sealed class GraphSubscriptionOptions
{
    /// <summary>The longest a <c>users</c> subscription may live (Graph v1.0: 41,760 minutes, under 29 days).</summary>
    public static readonly TimeSpan MaxLifetime = TimeSpan.FromMinutes(41_760);

    /// <summary>The resource subscribed to.</summary>
    public const string Resource = "users";

    /// <summary>The changes subscribed to: disabled accounts are updates, deletions are (soft) deletes or updates.</summary>
    public const string ChangeType = "updated,deleted";

    /// <summary>
    /// Where Graph delivers change notifications; for the Event Grid partner topic
    /// <c>EventGrid:?azuresubscriptionid=&lt;sub&gt;&amp;resourcegroup=&lt;rg&gt;&amp;partnertopic=&lt;name&gt;&amp;location=&lt;region&gt;</c>.
    /// Unset: the app manages no subscription.
    /// </summary>
    public string? NotificationUrl { get; set; }

    /// <summary>Where Graph delivers lifecycle notifications; defaults to <see cref="NotificationUrl"/> (the same partner topic).</summary>
    public string? LifecycleNotificationUrl { get; set; }

    /// <summary>The subscription is renewed once less than this remains (default 7 days: six daily runs may fail before it lapses).</summary>
    public TimeSpan RenewBefore { get; set; } = TimeSpan.FromDays(7);

    /// <summary>
    /// Requested expirations stay this far under <see cref="MaxLifetime"/> (default 1 hour), so that clock skew between
    /// us and Graph never makes a request exceed the maximum, which Graph refuses with 400.
    /// </summary>
    public TimeSpan ExpirationMargin { get; set; } = TimeSpan.FromHours(1);

    /// <summary>How often the standalone host runs the check (default daily; the Functions app's timer is daily).</summary>
    public TimeSpan CheckInterval { get; set; } = TimeSpan.FromDays(1);

    public bool Enabled => !string.IsNullOrWhiteSpace(NotificationUrl);

    /// <summary>The expiration to ask for at <paramref name="now"/>: the maximum less the margin.</summary>
    public DateTimeOffset ExpirationFrom(DateTimeOffset now) => now + MaxLifetime - ExpirationMargin;
}
