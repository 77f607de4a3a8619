namespace TokenService.Configuration;

/// <summary>Configuration section <c>Events</c>: IdP events delivered by Event Grid (CONTRACT §1, §5).</summary>
public sealed class EventsOptions
{
    public const string SectionName = "Events";

    /// <summary>Secret every webhook delivery must carry in the query string <c>key</c>; required outside Development.</summary>
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

    /// <summary>How long processed event ids are remembered (Event Grid retries for up to 24 hours).</summary>
    public TimeSpan DeduplicationWindow { get; set; } = TimeSpan.FromHours(25);

    /// <summary>How old a SET may be (its iat) and still be acted on.</summary>
    public TimeSpan MaxSecurityEventAge { get; set; } = TimeSpan.FromDays(1);

    internal bool SsfConfigured => !string.IsNullOrWhiteSpace(SsfIssuer) && (!string.IsNullOrWhiteSpace(SsfJwksUri) || !string.IsNullOrWhiteSpace(SsfJwksPath));
}
