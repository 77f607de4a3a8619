namespace TokenService.Configuration;

/// <summary>
/// Configuration section <c>RateLimits</c> (issue 20, item 6): request limits per source address and per client on the
/// token, revocation, introspection, management and event routes, and a back-off after failed client authentication.
/// On by default with limits that legitimate traffic does not reach; docs/security.md gives the numbers and why.
/// Every limit is held in the process, so on a scaled-out Functions app it is a limit per instance.
/// </summary>
public sealed class RateLimitOptions
{
    public const string SectionName = "RateLimits";

    /// <summary>Off: no request limit and no back-off (for a deployment whose front end enforces them).</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>
    /// Requests per minute, per route, from one source address (an IPv4 address or an IPv6 /64) that are not made by an
    /// authenticated confidential, resource-server or admin client: spa requests, failed authentications, bad requests,
    /// webhook deliveries without the key, SSF pushes. A burst of one minute's worth is allowed; 0 turns this limit off.
    /// </summary>
    public int PerIpPerMinute { get; set; } = 600;

    /// <summary>
    /// Requests per minute, per route, of one authenticated confidential, resource-server or admin client, from
    /// whatever address (a server-side client's traffic, which shares one egress address, is counted here instead
    /// of against that address). 0 turns this limit off.
    /// </summary>
    public int PerClientPerMinute { get; set; } = 6000;

    /// <summary>
    /// Longest refusal window after consecutive failed authentications of one client id from one source address: the
    /// first failures answer 401 at once, then each further failure doubles the window (1 s, 2 s, 4 s, …) up to this.
    /// 0 turns the back-off off.
    /// </summary>
    public TimeSpan FailedAuthBackoffMax { get; set; } = TimeSpan.FromMinutes(1);
}
