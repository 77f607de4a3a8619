namespace TokenService.Protocol;

/// <summary>RFC 8693 §3 token type identifiers (<c>subject_token_type</c>, <c>requested_token_type</c>, <c>issued_token_type</c>).</summary>
public static class TokenTypes
{
    /// <summary>An OpenID Connect ID token: the only subject token this service exchanges.</summary>
    public const string IdToken = "urn:ietf:params:oauth:token-type:id_token";

    /// <summary>An OAuth access token: the only token this service issues by exchange.</summary>
    public const string AccessToken = "urn:ietf:params:oauth:token-type:access_token";
}
