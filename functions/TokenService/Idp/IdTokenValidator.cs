using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;
using TokenService.Configuration;
using TokenService.Hosting;
using TokenService.Jwt;
using TokenService.Sessions;

namespace TokenService.Idp;

/// <summary>The IdP's issuer, audience and keys: configured, or the built-in development IdP.</summary>
public sealed record IdpTrust(string Issuer, string Audience, string UserIdClaim, IIssuerKeySource Keys);

/// <summary>A validated ID token.</summary>
public sealed record ValidatedIdToken(JwtClaims Payload, string UserId, string ReplayKey, DateTimeOffset ExpiresAt);

public readonly record struct IdTokenValidationResult(ValidatedIdToken? Token, JwtValidationError Error, string? Description)
{
    public bool IsValid => Token is not null;
}

/// <summary>
/// ID token validation per RFC 8725 and OIDC Core §3.1.3.7: asymmetric algorithms only, bound to the
/// key type, keys only from the IdP's configured JWKS, exact iss and aud, exp/nbf with at most 60 s skew,
/// sub required, and our own access tokens (typ at+jwt) refused. The expected audience is the exchanging
/// client's (<c>Clients:N:IdpAudience</c>, default <c>Idp:Audience</c>): an ID token is meant for the application
/// it was issued to (OIDC Core §3.1.3.7 item 3), so another client must not be able to exchange it; with several
/// audiences its <c>azp</c> must name that application, as must any <c>azp</c> (items 4 and 5).
/// </summary>
public sealed class IdTokenValidator
{
    private readonly IdpTrust _trust;
    private readonly TimeProvider _time;
    private readonly TimeSpan _skew;
    private readonly JwtValidator _default;

    // One validator (Microsoft.IdentityModel parameters) per audience; the audiences come from client configuration, so this stays small.
    private readonly ConcurrentDictionary<string, JwtValidator> _byAudience = new(StringComparer.Ordinal);

    public IdTokenValidator(IdpTrust trust, IOptions<TokenServiceOptions> options, TimeProvider time)
    {
        _trust = trust;
        _time = time;
        _skew = options.Value.ClockSkew > TimeSpan.FromSeconds(60) ? TimeSpan.FromSeconds(60) : options.Value.ClockSkew;
        _default = Create(trust.Audience);
    }

    public IdpTrust Trust => _trust;

    /// <summary>Validates <paramref name="idToken"/> for <paramref name="audience"/> (null: the IdP's default audience).</summary>
    public async ValueTask<IdTokenValidationResult> ValidateAsync(string idToken, string? audience, CancellationToken cancellationToken)
    {
        var validator = audience is null || audience == _trust.Audience ? _default : _byAudience.GetOrAdd(audience, Create);
        var result = await validator.ValidateAsync(idToken, cancellationToken);
        if (!result.IsValid)
        {
            return new(null, result.Error, result.Description);
        }

        var payload = result.Payload!;
        if (AuthorizedPartyError(result.Token, payload, audience ?? _trust.Audience) is { } azpError)
        {
            return new(null, JwtValidationError.InvalidAudience, azpError);
        }

        var userId = payload.GetClaim(_trust.UserIdClaim);
        if (string.IsNullOrEmpty(userId))
        {
            return new(null, JwtValidationError.MissingClaim, $"The ID token has no '{_trust.UserIdClaim}' claim.");
        }

        // One rule for user ids (UserIds): an id the exchange accepts can be named by force logout and IdP events, so
        // refusing it here is the only way to never open a session that nothing could end. The sub goes into our
        // access tokens, so it obeys the same rule when another claim names the user.
        if ((UserIds.Problem(userId) ?? UserIds.Problem(payload.Subject)) is { } problem)
        {
            return new(null, JwtValidationError.Malformed, "The ID token's user identifier is not acceptable. " + problem);
        }

        // The replay key hashes the JWS signing input: every re-encoding changes the signature check, and ECDSA
        // signature malleability cannot produce a "new" token with the same claims.
        var signingInput = idToken.AsSpan(0, idToken.LastIndexOf('.'));
        var replayKey = Base64UrlEncoding.Encode(SHA256.HashData(Encoding.ASCII.GetBytes(signingInput.ToString())));
        var expiresAt = TimeArithmetic.AddSaturating(DateTimeOffset.FromUnixTimeSeconds(payload.ExpiresAt!.Value), _skew);
        return new(new ValidatedIdToken(payload, userId, replayKey, expiresAt), JwtValidationError.None, null);
    }

    /// <summary>
    /// OIDC Core §3.1.3.7 items 3 to 5, for the client we validate for (its IdP client id, <paramref name="expected"/>,
    /// which the aud check already required): an ID token with several audiences must carry <c>azp</c> (item 4), and an
    /// <c>azp</c>, whenever present, must be that client id (item 5). The items say SHOULD; here they are required,
    /// because the exchange turns the ID token into our tokens: a token the IdP issued to another application (its
    /// azp) that merely lists ours among its audiences must not become a session of this client. Null when it holds.
    /// </summary>
    private static string? AuthorizedPartyError(Microsoft.IdentityModel.JsonWebTokens.JsonWebToken? token, JwtClaims payload, string expected)
    {
        if (token is null)
        {
            // The validator always hands IdentityModel's token on success; without it azp cannot be checked: fail closed.
            return "The ID token's authorized party (azp) cannot be read.";
        }

        // TryGetClaim finds azp of any JSON type; only a string equal to the client id passes (a number or array never).
        if (token.TryGetClaim("azp", out var azp))
        {
            return azp.ValueType == System.Security.Claims.ClaimValueTypes.String && string.Equals(azp.Value, expected, StringComparison.Ordinal)
                ? null
                : "The ID token was issued to another party (azp is not this client's IdP audience).";
        }

        return payload.Audiences.Count > 1 ? "An ID token with several audiences must name its authorized party (azp)." : null;
    }

    private JwtValidator Create(string audience) => new(new JwtValidationOptions
    {
        AllowedAlgorithms = JwsAlgorithms.All,
        Issuer = _trust.Issuer,
        Audiences = [audience],
        ClockSkew = _skew,
        RequireExpiration = true,
        RequireSubject = true,
        ForbiddenTypes = ["at+jwt", "secevent+jwt", "logout+jwt"],
        MaxTokenLength = 16 * 1024,
        AdditionalClaims = _trust.UserIdClaim == "sub" ? null : [_trust.UserIdClaim],
    }, _trust.Keys, _time);
}
