namespace TokenService.Configuration;

/// <summary>Configuration section <c>Idp</c>: the trusted institutional identity provider (docs/api.md, "Configuration").</summary>
public sealed class IdpOptions
{
    public const string SectionName = "Idp";

    public string? Issuer { get; set; }
    public string? Audience { get; set; }
    public string? JwksUri { get; set; }
    public string? JwksPath { get; set; }

    /// <summary>The ID-token claim that identifies the user for sessions and IdP events (Entra: <c>oid</c>).</summary>
    public string UserIdClaim { get; set; } = "sub";

    /// <summary>
    /// Minimum time between two fetches of the IdP's JWKS (unknown <c>kid</c>, stale cache, or nothing cached), successful
    /// or not: with nothing cached, token exchange answers 503 until it has passed after a failed fetch.
    /// </summary>
    public TimeSpan JwksRefetchInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long fetched IdP keys are trusted before a background refresh.</summary>
    public TimeSpan JwksCacheLifetime { get; set; } = TimeSpan.FromHours(1);

    internal bool IsConfigured => Issuer is not null || Audience is not null || JwksUri is not null || JwksPath is not null;
}
