namespace TokenService.Configuration;

/// <summary>Configuration section <c>Events</c>: IdP events delivered by Event Grid (CONTRACT §1, §5).</summary>
public sealed class EventsOptions
{
    public const string SectionName = "Events";

    /// <summary>Secret every webhook delivery must carry in the query string <c>key</c>; required outside Development.</summary>
    public string? WebhookSecret { get; set; }
}
