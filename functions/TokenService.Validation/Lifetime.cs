using Microsoft.IdentityModel.Tokens;

namespace TokenService.Validation;

/// <summary>
/// IdentityModel's exp/nbf rules (RFC 7519 §4.1.4, §4.1.5, with the parameters' clock skew) on a
/// <see cref="TimeProvider"/>: IdentityModel 8 reads the wall clock, and JwtBearer does not pass the scheme's
/// <c>TimeProvider</c> on, so a resource server's clock could otherwise not be injected.
/// </summary>
internal static class Lifetime
{
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

        // Checked after expiry, so that an expired token is reported as such whatever its nbf.
        if (notBefore is { } nbf && nbf > expires)
        {
            throw new SecurityTokenInvalidLifetimeException("The token's nbf is after its exp.") { NotBefore = nbf, Expires = expires };
        }

        return true;
    }
}
