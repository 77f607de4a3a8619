namespace TokenService.Protocol;

/// <summary>
/// The error codes of a refused Security Event Token push (RFC 8935 §2.4, IANA "Security Event Token Error Codes"),
/// the <c>err</c> member of the IdP events endpoint's answer. A registry of its own, although <c>invalid_request</c>
/// is spelt as the OAuth code is.
/// </summary>
public static class SecurityEventErrors
{
    /// <summary>The request or the SET is malformed or fails a check of its content.</summary>
    public const string InvalidRequest = "invalid_request";

    /// <summary>The SET's signing key is unknown, or its signature does not verify.</summary>
    public const string InvalidKey = "invalid_key";

    /// <summary>The SET's issuer is not the configured transmitter (or none is configured).</summary>
    public const string InvalidIssuer = "invalid_issuer";

    /// <summary>The SET's audience is not this receiver.</summary>
    public const string InvalidAudience = "invalid_audience";
}
