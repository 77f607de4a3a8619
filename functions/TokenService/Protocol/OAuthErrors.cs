using TokenService.Dpop;

namespace TokenService.Protocol;

/// <summary>
/// The OAuth error codes this service answers with (the <c>error</c> member of an RFC 6749 §5.2 body, or of an RFC 6750
/// §3 challenge), each written once. The codes are registered in the IANA "OAuth Extensions Error Registry".
/// </summary>
public static class OAuthErrors
{
    /// <summary>RFC 6749 §5.2: a missing, repeated or malformed parameter, or an otherwise malformed request.</summary>
    public const string InvalidRequest = "invalid_request";

    /// <summary>RFC 6749 §5.2: client authentication failed (401 with <c>WWW-Authenticate</c> when the client used a scheme).</summary>
    public const string InvalidClient = "invalid_client";

    /// <summary>RFC 6749 §5.2: the grant (here the refresh token) is invalid, expired, revoked or not the client's.</summary>
    public const string InvalidGrant = "invalid_grant";

    /// <summary>RFC 6749 §5.2: the authenticated client may not use this grant or endpoint.</summary>
    public const string UnauthorizedClient = "unauthorized_client";

    /// <summary>RFC 6749 §5.2: the grant type is not supported.</summary>
    public const string UnsupportedGrantType = "unsupported_grant_type";

    /// <summary>RFC 6749 §5.2: the requested scope is invalid, unknown, or exceeds what may be granted.</summary>
    public const string InvalidScope = "invalid_scope";

    /// <summary>RFC 8707 §2 and RFC 8693 §2.2.2: a requested resource or audience the client may not have a token for.</summary>
    public const string InvalidTarget = "invalid_target";

    /// <summary>RFC 6750 §3.1: the access token is expired, revoked, malformed or otherwise invalid.</summary>
    public const string InvalidToken = "invalid_token";

    /// <summary>RFC 6749 §4.1.2.1: an unexpected condition; used for any endpoint's unhandled failure.</summary>
    public const string ServerError = "server_error";

    /// <summary>RFC 6749 §4.1.2.1: overload or a dependency outage; the client may retry later.</summary>
    public const string TemporarilyUnavailable = "temporarily_unavailable";

    /// <summary>RFC 9449 §5: the DPoP proof is missing where required, or invalid.</summary>
    public const string InvalidDpopProof = DpopProofResult.InvalidProofCode;

    /// <summary>RFC 9449 §8: the proof must carry the nonce the server offered.</summary>
    public const string UseDpopNonce = DpopProofResult.UseNonceCode;
}
