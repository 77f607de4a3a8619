namespace TokenService.Jwt;

/// <summary>What a JWS must satisfy (RFC 8725 §3; RFC 9068 §4 for access tokens).</summary>
public sealed class JwtValidationOptions
{
    /// <summary>Algorithms accepted at all; each key narrows this further to its own type.</summary>
    public IReadOnlyList<string> AllowedAlgorithms { get; init; } = JwsAlgorithms.All;

    /// <summary>Exact issuer (RFC 8725 §3.8); null skips the check.</summary>
    public string? Issuer { get; init; }

    /// <summary>At least one <c>aud</c> value must be one of these (RFC 8725 §3.9); null skips the check.</summary>
    public IReadOnlyCollection<string>? Audiences { get; init; }

    /// <summary>Required <c>typ</c> media type without the optional "application/" prefix (RFC 7515 §4.1.9), e.g. "at+jwt".</summary>
    public string? RequiredType { get; init; }

    /// <summary>Types refused even when no type is required, e.g. our "at+jwt" where an ID token is expected (RFC 8725 §3.11).</summary>
    public IReadOnlyList<string> ForbiddenTypes { get; init; } = [];

    public TimeSpan ClockSkew { get; init; } = TimeSpan.FromSeconds(60);
    public bool RequireExpiration { get; init; } = true;
    public bool RequireSubject { get; init; } = true;
    public bool RequireKeyId { get; init; }

    /// <summary>Tokens longer than this are refused before any decoding.</summary>
    public int MaxTokenLength { get; init; } = 16 * 1024;

    /// <summary>Maximum JSON nesting depth in the payload.</summary>
    public int MaxPayloadDepth { get; init; } = 8;

    /// <summary>Extra top-level string claims to capture (for example an IdP's "oid").</summary>
    public IReadOnlyList<string>? AdditionalClaims { get; init; }
}
