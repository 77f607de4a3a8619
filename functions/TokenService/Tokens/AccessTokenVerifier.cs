using Microsoft.Extensions.Options;
using TokenService.Configuration;
using TokenService.Keys;
using TokenService.Sessions;
using TokenService.Jwt;

namespace TokenService.Tokens;

/// <summary>Whether one of our access tokens is usable right now, and why not.</summary>
public sealed record AccessTokenStatus(bool Active, JwtClaims? Payload, SessionRecord? Session, string? Reason)
{
    /// <summary>
    /// The <c>cnf.jkt</c> of an active DPoP-bound token (RFC 9449 §6.1), read from the token the signature check
    /// already parsed; null for a bearer token.
    /// </summary>
    public string? ConfirmationJkt { get; init; }

    public static AccessTokenStatus Inactive(string reason, JwtClaims? payload = null) => new(false, payload, null, reason);
}

/// <summary>
/// Validates our own access tokens for introspection, revocation and the session endpoints (docs/api.md, "Access token"):
/// signature with a key from our JWKS for that kid only, alg bound to the key, typ at+jwt, iss, exp/nbf with
/// bounded skew, then session state and the jti deny list.
/// </summary>
public sealed class AccessTokenVerifier
{
    private readonly TimeProvider _time;
    private readonly IAccessTokenDenyList _denyList;
    private readonly ISessionStore _sessions;
    private readonly JwtValidator _signature;
    private readonly JwtValidator _expiredAllowed;

    public AccessTokenVerifier(SigningKeyResolver keys, IOptions<TokenServiceOptions> options, TimeProvider time, IAccessTokenDenyList denyList, ISessionStore sessions)
    {
        _time = time;
        _denyList = denyList;
        _sessions = sessions;
        // Microsoft.IdentityModel (JwtValidator): keys only from our JWKS by kid, alg bound to the key, typ at+jwt
        // (RFC 9068 §4), exact iss, exp/nbf with the configured skew.
        _signature = new JwtValidator(new JwtValidationOptions
        {
            AllowedAlgorithms = JwsAlgorithms.Signing,
            Issuer = options.Value.IssuerOrThrow,
            RequiredType = "at+jwt",
            RequireKeyId = true,
            ClockSkew = options.Value.ClockSkew,
            MaxTokenLength = 8 * 1024,
        }, keys, time);
        _expiredAllowed = new JwtValidator(new JwtValidationOptions
        {
            AllowedAlgorithms = JwsAlgorithms.Signing,
            Issuer = options.Value.IssuerOrThrow,
            RequiredType = "at+jwt",
            RequireKeyId = true,
            ClockSkew = TimeSpan.FromDays(36500),
            MaxTokenLength = 8 * 1024,
        }, keys, time);
    }

    /// <summary>Signature and claims only; <paramref name="allowExpired"/> for revocation, where an expired token needs nothing.</summary>
    public ValueTask<JwtValidationResult> ValidateSignatureAsync(string token, bool allowExpired, CancellationToken cancellationToken) =>
        (allowExpired ? _expiredAllowed : _signature).ValidateAsync(token, cancellationToken);

    /// <summary>Full check: signature and claims, then deny list, then the session must be live.</summary>
    public async ValueTask<AccessTokenStatus> ValidateActiveAsync(string? token, CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(token))
        {
            return AccessTokenStatus.Inactive("missing");
        }

        var result = await ValidateSignatureAsync(token, allowExpired: false, cancellationToken);
        if (!result.IsValid)
        {
            return AccessTokenStatus.Inactive(result.Error.ToString());
        }

        var payload = result.Payload!;
        if (payload.JwtId is null || payload.SessionId is null || payload.ClientId is null)
        {
            return AccessTokenStatus.Inactive("missing-claims", payload);
        }

        if (await _denyList.IsDeniedAsync(payload.JwtId, cancellationToken))
        {
            return AccessTokenStatus.Inactive("revoked", payload);
        }

        var session = await _sessions.GetSessionAsync(payload.SessionId, cancellationToken);
        if (session is null || !session.IsLive(_time.GetUtcNow()) || session.Subject != payload.Subject)
        {
            return AccessTokenStatus.Inactive("session-ended", payload);
        }

        return new AccessTokenStatus(true, payload, session, null)
        {
            ConfirmationJkt = result.Token is { } parsed ? Dpop.DpopConfirmation.ReadJkt(parsed) : null,
        };
    }
}
