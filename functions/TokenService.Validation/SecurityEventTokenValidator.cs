using System.Text.Json;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using TokenService.Jose;

namespace TokenService.Validation;

/// <summary>
/// The outcome of checking one SET: valid (with its <c>jti</c> and payload), refused with an RFC 8935 §2.3 error code,
/// or not checkable now (the token service's keys cannot be fetched: the SET is neither accepted nor refused, so the
/// transmitter sends it again).
/// </summary>
internal sealed record SetCheck(string? Jti, JsonElement Payload, string? Error, string? Description, bool Unavailable = false)
{
    public bool Valid => Error is null && !Unavailable;

    public static SetCheck Refused(string error, string description) => new(null, default, error, description);
}

/// <summary>
/// Verifies the Security Event Tokens (RFC 8417) of this API's stream as the token service verifies the SETs it receives
/// and as the library verifies access tokens: strict base64url compact JWS (RFC 7515 §7.1), no <c>crit</c> (RFC 7515
/// §4.1.11), <c>typ</c> <c>secevent+jwt</c> (RFC 8417 §2.3), signed with a key of the token service's JWKS by an
/// algorithm of its list bound to that key (RFC 8725 §3.1), <c>iss</c> the token service's issuer, <c>aud</c> one of
/// this API's audiences, <c>jti</c>, <c>iat</c> and an <c>events</c> object present (RFC 8417 §2.2).
/// </summary>
internal sealed class SecurityEventTokenValidator(SigningKeyRefetcher refetcher)
{
    /// <summary>RFC 8417 §2.3: "secevent+jwt"; RFC 7515 §4.1.9 allows the "application/" prefix.</summary>
    private static readonly string[] Types = ["secevent+jwt", "application/secevent+jwt"];

    /// <summary>How far in the future an <c>iat</c> may be (clocks of two machines).</summary>
    private static readonly TimeSpan ClockSkew = TimeSpan.FromMinutes(5);

    private readonly JsonWebTokenHandler _handler = new();

    public async Task<SetCheck> CheckAsync(string set, string issuer, JwtBearerOptions bearer, DateTimeOffset now, CancellationToken cancellationToken)
    {
        if (!Base64UrlEncoding.IsStrictCompactJws(set))
        {
            return SetCheck.Refused("invalid_request", "The SET is not a compact JWS in strict base64url.");
        }

        IEnumerable<SecurityKey> keys;
        try
        {
            keys = bearer.ConfigurationManager is { } manager
                ? (await manager.GetConfigurationAsync(cancellationToken)).SigningKeys
                : bearer.TokenValidationParameters.IssuerSigningKeys ?? [];
        }
        catch (Exception ex) when (ex is InvalidOperationException or HttpRequestException or IOException
            || (ex is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            return new SetCheck(null, default, null, null, Unavailable: true);
        }

        var result = await _handler.ValidateTokenAsync(set, Parameters(issuer, bearer, keys));
        if (result.Exception is SecurityTokenSignatureKeyNotFoundException)
        {
            // A key published without notice (as for access tokens, SigningKeyRefetcher): fetch the keys now, once per interval.
            var (fresh, _) = await refetcher.GetAsync(bearer, cancellationToken);
            if (fresh is null)
            {
                return new SetCheck(null, default, null, null, Unavailable: true);
            }

            result = await _handler.ValidateTokenAsync(set, Parameters(issuer, bearer, fresh));
        }

        if (!result.IsValid)
        {
            return result.Exception switch
            {
                // RFC 8935 §2.3 error codes.
                SecurityTokenInvalidIssuerException => SetCheck.Refused("invalid_issuer", "The SET's iss is not the token service's issuer."),
                SecurityTokenInvalidAudienceException => SetCheck.Refused("invalid_audience", "The SET's aud is not this API's audience."),
                SecurityTokenSignatureKeyNotFoundException or SecurityTokenInvalidSignatureException or SecurityTokenInvalidAlgorithmException
                    => SetCheck.Refused("invalid_key", "The SET is not signed by a key of the token service with an allowed algorithm."),
                SecurityTokenInvalidTypeException => SetCheck.Refused("invalid_request", "The SET's typ is not secevent+jwt."),
                _ => SetCheck.Refused("invalid_request", "The SET is not a valid JWS."),
            };
        }

        var token = (JsonWebToken)result.SecurityToken;
        if (token.TryGetHeaderValue<object>("crit", out _))
        {
            return SetCheck.Refused("invalid_request", "The SET names critical header extensions that are not supported.");
        }

        if (string.IsNullOrEmpty(token.Id))
        {
            return SetCheck.Refused("invalid_request", "The SET has no jti.");
        }

        // RFC 8417 §2.2: iat is REQUIRED. No bound on its age: a SET is signed at its first transmission and keeps its iat
        // when it is sent again, so an event held while this API or the network was down arrives with an old iat, and
        // refusing it would lose a revocation. Replays are caught by jti instead (SharedSignalsReceiver), and the only
        // event acted on only once, verification, counts only with a state this instance is still waiting for. Acting on
        // an old session-revoked event twice is harmless: it can only end a session, never revive one.
        if (!token.TryGetPayloadValue<long>("iat", out var iat) || DateTimeOffset.FromUnixTimeSeconds(iat) > now + ClockSkew)
        {
            return SetCheck.Refused("invalid_request", "The SET's iat is missing or in the future.");
        }

        var payload = JsonDocument.Parse(Base64UrlEncoding.DecodeStrict(token.EncodedPayload)!).RootElement.Clone();
        if (payload.ValueKind != JsonValueKind.Object || !payload.TryGetProperty("events", out var events) || events.ValueKind != JsonValueKind.Object)
        {
            return SetCheck.Refused("invalid_request", "The SET has no events object.");
        }

        return new SetCheck(token.Id, payload, null, null);
    }

    private static TokenValidationParameters Parameters(string issuer, JwtBearerOptions bearer, IEnumerable<SecurityKey> keys)
    {
        var access = bearer.TokenValidationParameters;
        var algorithms = access.ValidAlgorithms ?? JwsAlgorithms.Signing;
        return new TokenValidationParameters
        {
            ValidTypes = Types,
            ValidIssuer = issuer,
            ValidAudiences = Audiences(bearer),
            IssuerSigningKeys = keys,
            ValidAlgorithms = algorithms,
            // RFC 8725 §3.1: the algorithm from the token service's list and bound to the key, as for access tokens.
            AlgorithmValidator = (algorithm, key, _, _) => algorithms.Contains(algorithm, StringComparer.Ordinal) && JwsAlgorithms.KeyAllows(key, algorithm),
            RequireSignedTokens = true,
            // SSF 1.0 §4.1.7 / RFC 8417 §2.2: SETs carry no exp; iat is checked above.
            ValidateLifetime = false,
            RequireExpirationTime = false,
        };
    }

    /// <summary>This API's audiences: the scheme's <c>Audience</c> and its parameters' <c>ValidAudience(s)</c>.</summary>
    public static IReadOnlyList<string> Audiences(JwtBearerOptions bearer)
    {
        var audiences = new List<string>();
        if (!string.IsNullOrEmpty(bearer.Audience))
        {
            audiences.Add(bearer.Audience);
        }

        if (!string.IsNullOrEmpty(bearer.TokenValidationParameters.ValidAudience))
        {
            audiences.Add(bearer.TokenValidationParameters.ValidAudience);
        }

        audiences.AddRange(bearer.TokenValidationParameters.ValidAudiences ?? []);
        return audiences;
    }
}
