namespace TokenService.Protocol;

/// <summary>The <c>grant_type</c> values the token endpoint accepts (and discovery advertises).</summary>
public static class GrantTypes
{
    /// <summary>RFC 8693 §2.1: token exchange; here an IdP ID token opens a session.</summary>
    public const string TokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange";

    /// <summary>RFC 6749 §6: refresh, with rotation.</summary>
    public const string RefreshToken = "refresh_token";
}
