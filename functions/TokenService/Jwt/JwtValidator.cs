using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace TokenService.Jwt;

/// <summary>
/// Validates one kind of JWS (ID tokens, SETs, our access tokens) with Microsoft.IdentityModel's
/// <see cref="JsonWebTokenHandler"/> and one fixed <see cref="TokenValidationParameters"/> built from
/// <see cref="JwtValidationOptions"/>: signature with keys only from <see cref="IIssuerKeySource"/> (header
/// <c>jwk</c>/<c>jku</c>/<c>x5u</c>/<c>x5c</c> are never used), algorithm allow-list bound to the key
/// (RFC 8725 §3.1), <c>typ</c> (RFC 8725 §3.11), exact issuer and audience (§3.8, §3.9), exp/nbf with an explicit clock
/// skew, on the injected <see cref="TimeProvider"/>. <see cref="JwsPrecheck"/> runs first (what IdentityModel does not
/// refuse); iat in the future and a missing <c>sub</c> are checked after. Failures are result values, never exceptions.
/// </summary>
public sealed class JwtValidator
{
    private static readonly JsonWebTokenHandler Handler = new() { MapInboundClaims = false };

    private readonly JwtValidationOptions _options;
    private readonly IIssuerKeySource _keys;
    private readonly TimeProvider _time;
    private readonly TokenValidationParameters _parameters;

    public JwtValidator(JwtValidationOptions options, IIssuerKeySource keys, TimeProvider time)
    {
        _options = options;
        _keys = keys;
        _time = time;
        var allowed = options.AllowedAlgorithms;
        _parameters = new TokenValidationParameters
        {
            ValidateIssuer = options.Issuer is not null,
            ValidIssuer = options.Issuer,
            ValidateAudience = options.Audiences is not null,
            ValidAudiences = options.Audiences,
            // RFC 8725 §3.9: the audience is compared exactly (IdentityModel would also accept "x/" for "x").
            IgnoreTrailingSlashWhenValidatingAudience = false,
            ValidateLifetime = true,
            RequireExpirationTime = options.RequireExpiration,
            ClockSkew = options.ClockSkew,
            // exp/nbf on the injected clock, an nbf after exp refused (JwtLifetime: the rule the resource-server library applies).
            LifetimeValidator = JwtLifetime.On(time),
            RequireSignedTokens = true,
            ValidAlgorithms = allowed,
            // IdentityModel's ValidAlgorithms alone does not bind the algorithm to the key (RFC 8725 §3.1).
            AlgorithmValidator = (algorithm, key, _, _) => Contains(allowed, algorithm) && JwsAlgorithms.KeyAllows(key, algorithm),
            // RFC 7515 §4.1.9: typ is a media type, compared case-insensitively, "application/" optional. ValidTypes is a
            // list of exact values and cannot refuse types where none is required (ID tokens: not at+jwt, RFC 8725 §3.11),
            // so the rule is IdentityModel's TypeValidator hook, which replaces ValidTypes.
            TypeValidator = (type, _, _) => CheckType(type, options),
            IssuerSigningKeyResolver = (_, _, kid, _) => keys.KeysFor(kid),
            TryAllIssuerSigningKeys = false,
            ValidateIssuerSigningKey = false,
            ValidateTokenReplay = false,
            SaveSigninToken = false,
            LogValidationExceptions = false,
        };
    }

    public JwtValidationOptions Options => _options;

    public ValueTask<JwtValidationResult> ValidateAsync(string? token, CancellationToken cancellationToken)
    {
        var precheck = JwsPrecheck.Check(token, _options);
        if (!precheck.IsValid)
        {
            return ValueTask.FromResult(JwtValidationResult.Fail(precheck.Error, precheck.Description!));
        }

        var resolving = _keys.ResolveAsync(precheck.Header.Kid, cancellationToken);
        return resolving.IsCompletedSuccessfully
            ? VerifyAsync(token!, precheck, resolving.Result)
            : ResolveThenVerifyAsync(token!, precheck, resolving);
    }

    private async ValueTask<JwtValidationResult> ResolveThenVerifyAsync(string token, JwsPrecheck.Outcome precheck, ValueTask<KeyResolution> resolving) =>
        await VerifyAsync(token, precheck, await resolving.ConfigureAwait(false)).ConfigureAwait(false);

    private async ValueTask<JwtValidationResult> VerifyAsync(string token, JwsPrecheck.Outcome precheck, KeyResolution resolution)
    {
        switch (resolution)
        {
            case KeyResolution.Unavailable:
                return JwtValidationResult.Fail(JwtValidationError.KeysUnavailable, "The signing keys cannot be obtained right now.");
            case KeyResolution.Unknown:
                return JwtValidationResult.Fail(JwtValidationError.UnknownKey, "The token's signing key is unknown.");
        }

        // RFC 8725 §3.1: the header's alg must be one the key allows. IdentityModel's AlgorithmValidator (set above too)
        // reports a mismatch as an invalid signature; checked here first, it is reported as the algorithm error it is.
        var keys = _keys.KeysFor(precheck.Header.Kid);
        if (keys.Length == 0)
        {
            return JwtValidationResult.Fail(JwtValidationError.UnknownKey, "The token's signing key is unknown.");
        }

        if (!JwsAlgorithms.KeyAllows(keys[0], precheck.Header.Alg))
        {
            return JwtValidationResult.Fail(JwtValidationError.UnsupportedAlgorithm, "The token's algorithm does not match its key.");
        }

        var result = await Handler.ValidateTokenAsync(token, _parameters).ConfigureAwait(false);
        if (!result.IsValid)
        {
            return Map(result.Exception);
        }

        var payload = precheck.Payload!;
        var now = _time.GetUtcNow().ToUnixTimeSeconds();
        if (payload.IssuedAt is { } iat && iat > now + (long)_options.ClockSkew.TotalSeconds)
        {
            // IdentityModel does not look at iat; a token from the future is refused (RFC 8725 §3.10 spirit, OIDC §3.1.3.7 item 10).
            return JwtValidationResult.Fail(JwtValidationError.IssuedInFuture, "The token was issued in the future.");
        }

        if (_options.RequireSubject && string.IsNullOrEmpty(payload.Subject))
        {
            return JwtValidationResult.Fail(JwtValidationError.MissingClaim, "The token has no subject (sub).");
        }

        return JwtValidationResult.Success(payload, precheck.Header.Kid ?? string.Empty, precheck.Header.Alg, result.SecurityToken as JsonWebToken);
    }

    private static JwtValidationResult Map(Exception? exception) => exception switch
    {
        SecurityTokenInvalidAlgorithmException => JwtValidationResult.Fail(JwtValidationError.UnsupportedAlgorithm, "The token's algorithm does not match its key."),
        SecurityTokenSignatureKeyNotFoundException => JwtValidationResult.Fail(JwtValidationError.UnknownKey, "The token's signing key is unknown."),
        SecurityTokenInvalidSignatureException => JwtValidationResult.Fail(JwtValidationError.InvalidSignature, "The token's signature is invalid."),
        SecurityTokenInvalidTypeException => JwtValidationResult.Fail(JwtValidationError.InvalidType, "The token's type is not the expected one."),
        SecurityTokenInvalidIssuerException => JwtValidationResult.Fail(JwtValidationError.InvalidIssuer, "The token's issuer is not trusted."),
        SecurityTokenInvalidAudienceException => JwtValidationResult.Fail(JwtValidationError.InvalidAudience, "The token is not meant for this audience."),
        SecurityTokenExpiredException => JwtValidationResult.Fail(JwtValidationError.Expired, "The token has expired."),
        SecurityTokenNotYetValidException => JwtValidationResult.Fail(JwtValidationError.NotYetValid, "The token is not valid yet."),
        SecurityTokenNoExpirationException => JwtValidationResult.Fail(JwtValidationError.MissingClaim, "The token has no expiry (exp)."),
        SecurityTokenInvalidLifetimeException => JwtValidationResult.Fail(JwtValidationError.InvalidLifetime, "The token's nbf is after its exp."),
        _ => JwtValidationResult.Fail(JwtValidationError.Malformed, "The token is not a valid JWS."),
    };

    private static string CheckType(string? type, JwtValidationOptions options)
    {
        if (options.RequiredType is { } required && !TypeMatches(type, required))
        {
            throw new SecurityTokenInvalidTypeException("The token's type is not the expected one.") { InvalidType = type };
        }

        for (var i = 0; i < options.ForbiddenTypes.Count; i++)
        {
            if (TypeMatches(type, options.ForbiddenTypes[i]))
            {
                throw new SecurityTokenInvalidTypeException("The token's type is not accepted here.") { InvalidType = type };
            }
        }

        return type ?? string.Empty;
    }

    // RFC 7515 §4.1.9: media types are case-insensitive and "application/" may be omitted.
    internal static bool TypeMatches(string? typ, string expected)
    {
        if (typ is null)
        {
            return false;
        }

        var span = typ.AsSpan();
        if (span.StartsWith("application/", StringComparison.OrdinalIgnoreCase))
        {
            span = span["application/".Length..];
        }

        return span.Equals(expected, StringComparison.OrdinalIgnoreCase);
    }

    private static bool Contains(IReadOnlyList<string> list, string value)
    {
        for (var i = 0; i < list.Count; i++)
        {
            if (string.Equals(list[i], value, StringComparison.Ordinal))
            {
                return true;
            }
        }

        return false;
    }
}
