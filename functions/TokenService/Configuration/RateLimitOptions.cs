namespace TokenService.Configuration;

/// <summary>
/// Configuration section <c>RateLimits</c>: request limits per source address and per client on the
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
    /// <para>
    /// Sized from the capacity model (docs/capacity.md): one Key Vault Premium vault signs 2,000
    /// tokens per 10 s (<see cref="KeysOptions.SignsPerWindow"/>), 12,000 a minute, and one confidential client (a
    /// backend-for-frontend exchanging and refreshing for all its users) may be the whole of that load. Its token
    /// requests must meet the vault's limit (a queue, then 503) before this one, so the default is one vault's sign
    /// rate: <see cref="OneVaultPerMinute"/>. Sizing rule with N signing vaults (the template's signingVaultCount, which
    /// writes this setting): N × 12,000. Fairness between clients is then the vault limiter's, per request.
    /// </para>
    /// </summary>
    public int PerClientPerMinute { get; set; } = OneVaultPerMinute;

    /// <summary>One Premium vault's documented sign rate in a minute: 2,000 per 10 s (RSA-2048, P-256 HSM keys) × 6.</summary>
    public const int OneVaultPerMinute = 12_000;

    /// <summary>
    /// Longest refusal window after consecutive failed authentications of one client id from one source address: the
    /// first failures answer 401 at once, then each further failure doubles the window (1 s, 2 s, 4 s, …) up to this.
    /// 0 turns the back-off off.
    /// </summary>
    public TimeSpan FailedAuthBackoffMax { get; set; } = TimeSpan.FromMinutes(1);
}
