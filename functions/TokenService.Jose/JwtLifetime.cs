using Microsoft.IdentityModel.Tokens;

namespace TokenService.Jose;

/// <summary>
/// The exp/nbf rules (RFC 7519 §4.1.4, §4.1.5, with the parameters' clock skew) for every JWT the product validates with
/// IdentityModel, on an injected <see cref="TimeProvider"/>: IdentityModel 8 reads the wall clock (its TimeProvider is not
/// public), and JwtBearer does not pass the scheme's <c>TimeProvider</c> on. Set as
/// <see cref="TokenValidationParameters.LifetimeValidator"/>; failures are IdentityModel's exceptions, so that callers map
/// them as they map IdentityModel's own.
/// </summary>
public static class JwtLifetime
{
    /// <summary>A <see cref="LifetimeValidator"/> on <paramref name="time"/>.</summary>
    public static LifetimeValidator On(TimeProvider time) => (notBefore, expires, _, parameters) => Validate(notBefore, expires, parameters, time);

    public static bool Validate(DateTime? notBefore, DateTime? expires, TokenValidationParameters parameters, TimeProvider time)
    {
        if (!parameters.ValidateLifetime)
        {
            return true;
        }

        var now = time.GetUtcNow().UtcDateTime;
        if (expires is null)
        {
            return !parameters.RequireExpirationTime ? true : throw new SecurityTokenNoExpirationException("The token has no expiry (exp).");
        }

        if (notBefore is { } early && early > now + parameters.ClockSkew)
        {
            throw new SecurityTokenNotYetValidException("The token is not valid yet.") { NotBefore = early };
        }

        if (expires.Value <= now - parameters.ClockSkew)
        {
            throw new SecurityTokenExpiredException("The token has expired.") { Expires = expires.Value };
        }

        // A token whose nbf is after its exp is never valid (RFC 7519 §4.1.4, §4.1.5): refused even inside both skews,
        // which would otherwise let it through for up to twice the skew. Checked after expiry, so that an expired token
        // is reported as such whatever its nbf.
        if (notBefore is { } nbf && nbf > expires)
        {
            throw new SecurityTokenInvalidLifetimeException("The token's nbf is after its exp.") { NotBefore = nbf, Expires = expires };
        }

        return true;
    }
}
