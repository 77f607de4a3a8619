namespace TokenService.Configuration;

/// <summary>Configuration section <c>TokenService</c> (docs/api.md, "Configuration").</summary>
public sealed class TokenServiceOptions
{
    public const string SectionName = "TokenService";

    /// <summary><c>iss</c> of every token we issue and the base of discovery URLs.</summary>
    public string? Issuer { get; set; }

    public TimeSpan AccessTokenLifetime { get; set; } = TimeSpan.FromMinutes(15);
    public TimeSpan RefreshTokenLifetime { get; set; } = TimeSpan.FromDays(7);

    /// <summary>ASVS V7.1.1 inactivity timeout: a session not refreshed for this long ends.</summary>
    public TimeSpan SessionIdleTimeout { get; set; } = TimeSpan.FromDays(1);

    /// <summary>ASVS V7.1.1 absolute lifetime: no session, and no refresh token, outlives this.</summary>
    public TimeSpan SessionAbsoluteLifetime { get; set; } = TimeSpan.FromDays(7);

    public int MaxSessionsPerUser { get; set; } = 3;

    /// <summary>How long the immediately previous refresh token is still accepted after a rotation (0: never).</summary>
    public TimeSpan RefreshTokenReuseLeeway { get; set; } = TimeSpan.Zero;

    /// <summary>Clock skew tolerated on incoming JWTs (RFC 8725 recommends a small bound; at most 60 s).</summary>
    public TimeSpan ClockSkew { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Total time one request may spend on its dependency calls (store, Key Vault, the IdP's JWKS), retries
    /// included; past it the request answers 503 with Retry-After and commits nothing more.
    /// </summary>
    public TimeSpan DependencyBudget { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Budget of the <c>/healthz</c> probes (a health probe must not hang), whose result is cached briefly.</summary>
    public TimeSpan HealthProbeBudget { get; set; } = TimeSpan.FromSeconds(2);

    public string IssuerOrThrow => Issuer ?? throw new InvalidOperationException("TokenService:Issuer is not configured.");
}
