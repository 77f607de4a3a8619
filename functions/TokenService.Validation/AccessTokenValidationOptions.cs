using Microsoft.AspNetCore.Authentication;

namespace TokenService.Validation;

/// <summary>How a resource server validates the token service's access tokens.</summary>
public sealed class AccessTokenValidationOptions : AuthenticationSchemeOptions
{
    /// <summary>The token service's issuer (<c>iss</c>); discovery is read from {Authority}/.well-known/openid-configuration.</summary>
    public string Authority { get; set; } = string.Empty;

    /// <summary>This API's audience: tokens must name it in <c>aud</c>.</summary>
    public string Audience { get; set; } = string.Empty;

    /// <summary>This API's <c>resource_server</c> client id and secret, for introspection (HTTP Basic).</summary>
    public string? ClientId { get; set; }

    public string? ClientSecret { get; set; }

    /// <summary>
    /// Bounded staleness of revocation (session ended, jti denied): a token's status learned by introspection is
    /// reused for at most this long (default 30 s; never beyond the token's expiry). Zero checks every request.
    /// </summary>
    public TimeSpan StatusCacheDuration { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Check session state and the deny list through introspection (default true); false trusts the signature alone.</summary>
    public bool CheckTokenStatus { get; set; } = true;

    /// <summary>Clock skew on exp/nbf, at most 60 s.</summary>
    public TimeSpan ClockSkew { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Minimum time between two JWKS fetches (unknown kid, stale cache, or none cached), successful or not.</summary>
    public TimeSpan KeyRefetchInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long fetched keys are used before a background refresh (failures keep the cached keys).</summary>
    public TimeSpan KeyCacheLifetime { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Upper bound of the status cache's entries.</summary>
    public int MaxStatusCacheEntries { get; set; } = 100_000;

    /// <summary>Sends discovery, JWKS and introspection requests; null uses a shared <see cref="HttpClient"/>.</summary>
    public HttpMessageHandler? BackchannelHandler { get; set; }
}
