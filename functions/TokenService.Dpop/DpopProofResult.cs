namespace TokenService.Dpop;

/// <summary>Why a proof was refused (for logs and tests; clients see the error code and a fixed text).</summary>
public enum DpopProofError
{
    None,

    /// <summary>No <c>DPoP</c> header at all (not an error unless a proof is required).</summary>
    Missing,

    /// <summary>More than one <c>DPoP</c> header, or a value that is not one compact JWS (RFC 9449 §4.3 items 1 and 2).</summary>
    Malformed,

    /// <summary>Larger than the proof size bound.</summary>
    TooLarge,

    /// <summary><c>typ</c> is not <c>dpop+jwt</c> (§4.3 item 4, §11.5).</summary>
    WrongType,

    /// <summary><c>alg</c> is none, symmetric or not on the allow-list (§4.3 item 5, §11.6).</summary>
    AlgorithmNotAllowed,

    /// <summary>The <c>jwk</c> header is missing, not a usable public key of the algorithm's type, or holds private members (§4.3 item 7).</summary>
    InvalidKey,

    /// <summary>The signature does not verify with the <c>jwk</c> header (§4.3 item 6).</summary>
    InvalidSignature,

    /// <summary>A required claim (<c>jti</c>, <c>htm</c>, <c>htu</c>, <c>iat</c>) is missing or malformed (§4.3 item 3).</summary>
    MissingClaims,

    /// <summary><c>htm</c> differs from the request's method (§4.3 item 8).</summary>
    MethodMismatch,

    /// <summary><c>htu</c> differs from the request's URI after normalisation (§4.3 item 9).</summary>
    UriMismatch,

    /// <summary><c>iat</c> is older than the proof lifetime or further in the future than the skew (§4.3 item 11).</summary>
    Stale,

    /// <summary><c>ath</c> is missing or is not the hash of the presented access token (§4.3 item 12).</summary>
    AccessTokenHashMismatch,

    /// <summary>The nonce is missing, unknown or too old (§4.3 item 10, §8): answered <c>use_dpop_nonce</c>.</summary>
    NonceRequired,

    /// <summary>The <c>jti</c> was seen before within the proof lifetime (§11.1).</summary>
    Replayed,
}

/// <summary>
/// The outcome of checking one DPoP proof. A valid proof carries <see cref="Thumbprint"/>, the RFC 7638 JWK SHA-256
/// thumbprint of its key, base64url (the <c>jkt</c> of RFC 9449 §6.1).
/// </summary>
public readonly record struct DpopProofResult(DpopProofError Error, string? Thumbprint, string? Description)
{
    public const string InvalidProofCode = "invalid_dpop_proof";
    public const string UseNonceCode = "use_dpop_nonce";

    public static DpopProofResult Absent { get; } = new(DpopProofError.Missing, null, "A DPoP proof is required.");

    public bool IsValid => Error == DpopProofError.None;

    public bool IsAbsent => Error == DpopProofError.Missing;

    /// <summary>The RFC 9449 error code for a refused proof: <c>use_dpop_nonce</c> or <c>invalid_dpop_proof</c>.</summary>
    public string ErrorCode => Error == DpopProofError.NonceRequired ? UseNonceCode : InvalidProofCode;

    public static DpopProofResult Valid(string thumbprint) => new(DpopProofError.None, thumbprint, null);

    public static DpopProofResult Invalid(DpopProofError error, string description) => new(error, null, description);
}
