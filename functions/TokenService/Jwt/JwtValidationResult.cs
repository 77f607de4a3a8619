using Microsoft.IdentityModel.JsonWebTokens;

namespace TokenService.Jwt;

/// <summary>Why a JWT was refused. Stable values: they appear in logs and tests.</summary>
public enum JwtValidationError
{
    None = 0,
    Malformed,
    TooLarge,
    UnsupportedAlgorithm,
    UnknownKey,
    InvalidSignature,
    InvalidType,
    InvalidIssuer,
    InvalidAudience,
    Expired,
    NotYetValid,
    IssuedInFuture,
    MissingClaim,
    KeysUnavailable,

    /// <summary>The token's nbf is after its exp: never valid (RFC 7519 §4.1.4, §4.1.5).</summary>
    InvalidLifetime,
}

/// <summary>The outcome of validating a JWS: a result object, never an exception, on the hot path.</summary>
public sealed class JwtValidationResult
{
    private JwtValidationResult(JwtValidationError error, string? description, JwtClaims? payload, string? kid, string? alg, JsonWebToken? token = null)
    {
        Token = token;
        Error = error;
        Description = description;
        Payload = payload;
        Kid = kid;
        Algorithm = alg;
    }

    public bool IsValid => Error == JwtValidationError.None;
    public JwtValidationError Error { get; }
    public string? Description { get; }
    public JwtClaims? Payload { get; }
    public string? Kid { get; }
    public string? Algorithm { get; }

    /// <summary>The validated token as IdentityModel parsed it, for claims the strict payload reader does not carry (<c>cnf</c>).</summary>
    public JsonWebToken? Token { get; }

    public static JwtValidationResult Success(JwtClaims payload, string kid, string alg, JsonWebToken? token) =>
        new(JwtValidationError.None, null, payload, kid, alg, token);

    public static JwtValidationResult Fail(JwtValidationError error, string description) => new(error, description, null, null, null);
}
