using TokenService.Validation.Jose;

namespace TokenService.Validation;

public enum AccessTokenError
{
    None = 0,

    /// <summary>Signature, type, algorithm, issuer, audience or time checks failed (see <see cref="JwtValidationError"/>).</summary>
    InvalidToken,

    /// <summary>The session ended or the jti is denied (as of at most <see cref="AccessTokenValidationOptions.StatusCacheDuration"/> ago).</summary>
    Revoked,

    /// <summary>Keys or status could not be learned and nothing usable was cached: fail closed.</summary>
    Unavailable,
}

/// <summary>Outcome of validating an access token: a result object, never an exception, on the hot path.</summary>
public sealed record AccessTokenValidationResult(AccessTokenError Error, string? Description, JwtPayload? Payload, JwtValidationError JwtError = JwtValidationError.None)
{
    public bool IsValid => Error == AccessTokenError.None;
}
