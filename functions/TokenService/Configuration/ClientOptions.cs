namespace TokenService.Configuration;

/// <summary>One entry of configuration section <c>Clients</c> (<c>Clients__N__…</c>, docs/api.md, "Configuration").</summary>
public sealed class ClientOptions
{
    public const string SectionName = "Clients";

    public string? ClientId { get; set; }

    /// <summary><c>spa</c>, <c>confidential</c>, <c>resource_server</c> or <c>admin</c>.</summary>
    public string? Type { get; set; }

    public string? Secret { get; set; }

    /// <summary>
    /// The application's name as its users know it ("Library catalogue"), shown on the sessions page instead of the
    /// client id; optional (default: the client id). At most 100 characters, no control characters.
    /// </summary>
    public string? DisplayName { get; set; }
    public List<string> AllowedOrigins { get; set; } = [];
    public List<string> AllowedAudiences { get; set; } = [];
    public List<string> AllowedScopes { get; set; } = [];

    /// <summary>
    /// The <c>aud</c> the IdP puts in ID tokens issued to this application (its client id at the IdP); default
    /// <c>Idp:Audience</c>. Token exchange requires it, so that an ID token issued to one application cannot be
    /// exchanged by another client (OIDC Core §3.1.3.7 item 3: the audience names the intended recipient).
    /// </summary>
    public string? IdpAudience { get; set; }

    /// <summary>
    /// RFC 9449 §5.2 <c>dpop_bound_access_tokens</c>: token requests of this client without a <c>DPoP</c> proof are
    /// refused (<c>invalid_dpop_proof</c>).
    /// </summary>
    public bool RequireDpop { get; set; }
}
