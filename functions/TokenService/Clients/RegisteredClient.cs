namespace TokenService.Clients;

public enum ClientType
{
    /// <summary>Browser app: public client, refresh token only in the <c>__Host-refresh_token</c> cookie, allowed origins only.</summary>
    Spa,

    /// <summary>Server-side app with a secret: gets the refresh token in the response body.</summary>
    Confidential,

    /// <summary>API that introspects tokens (RFC 7662) with HTTP Basic.</summary>
    ResourceServer,

    /// <summary>Operator tooling: force-logout of a user.</summary>
    Admin,
}

/// <summary>A client from configuration. The secret is held only as a SHA-256 hash.</summary>
public sealed class RegisteredClient
{
    public required string ClientId { get; init; }
    public required ClientType Type { get; init; }

    /// <summary>The name users know the application by (<c>Clients:N:DisplayName</c>); null: none configured.</summary>
    public string? DisplayName { get; init; }
    public byte[]? SecretHash { get; init; }
    public IReadOnlySet<string> AllowedOrigins { get; init; } = new HashSet<string>();
    public IReadOnlyList<string> AllowedAudiences { get; init; } = [];
    public IReadOnlyList<string> AllowedScopes { get; init; } = [];

    /// <summary>The <c>aud</c> the IdP gives ID tokens for this client; null: the IdP's default audience (<c>Idp:Audience</c>).</summary>
    public string? IdpAudience { get; init; }

    /// <summary>Token requests without a DPoP proof are refused (RFC 9449 §5.2 <c>dpop_bound_access_tokens</c>).</summary>
    public bool RequireDpop { get; init; }

    public bool IsPublic => Type == ClientType.Spa;

    public static ClientType? ParseType(string? value) => value?.Trim().ToLowerInvariant() switch
    {
        "spa" => ClientType.Spa,
        "confidential" => ClientType.Confidential,
        "resource_server" => ClientType.ResourceServer,
        "admin" => ClientType.Admin,
        _ => null,
    };
}
