using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using TokenService.Jose;

namespace TokenService.Dpop;

/// <summary>
/// RFC 9449 §4.3 checks of one proof, with Microsoft.IdentityModel parsing the JWS, verifying the signature with the
/// <c>jwk</c> header and computing the RFC 7638 thumbprint. Order: size and syntax, <c>typ</c>, <c>alg</c>, the key,
/// the signature, the claims against the request, the nonce, and last the <c>jti</c> replay record, so that only a proof
/// that passed every other check takes a place in the replay cache.
/// </summary>
public sealed partial class DpopProofValidator : IDpopProofValidator
{
    /// <summary>
    /// Largest accepted <c>DPoP</c> header: a proof with an RSA-4096 key is about 2 KiB; the bound keeps crafted input
    /// cheap to refuse.
    /// </summary>
    public const int MaxProofLength = 8 * 1024;

    /// <summary>Longest <c>jti</c> remembered (RFC 9449 §11.1: refuse unnecessarily large jti values).</summary>
    public const int MaxJtiLength = 256;

    /// <summary>
    /// RFC 9449 §4.2/§11.6: asymmetric algorithms only, never <c>none</c> or a MAC: the product's one allow-list
    /// (<see cref="JwsAlgorithms.All"/>), ES256 first (what browsers' WebCrypto makes non-extractable keys for, and what
    /// the RFC's examples use).
    /// </summary>
    public static IReadOnlyList<string> SupportedAlgorithms => JwsAlgorithms.All;

    // RFC 7517 §6.2.2 and §6.3.2 private members, and the symmetric key value of §6.4.1.
    private static readonly string[] PrivateMembers = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

    /// <summary>Most verifiers kept; past it the cache starts over, so keys made up by the thousand cannot grow it.</summary>
    internal const int MaxCachedVerifiers = 10_000;

    // The library's own provider cache stays off: it is keyed by the key's id, which a proof's jwk may choose. Ours is
    // keyed by the RFC 7638 thumbprint, a hash of all of the public key (crv, x, y or n, e) and so of nothing else.
    private static readonly CryptoProviderFactory Crypto = new() { CacheSignatureProviders = false };

    // Verifiers by thumbprint and alg: importing a key (OpenSSL checks the point) costs about as much as verifying with
    // it, and a client signs all its proofs with one key.
    private readonly ConcurrentDictionary<string, SignatureProvider> _verifiers = new(StringComparer.Ordinal);

    private readonly IDpopReplayCache _replayCache;
    private readonly IDpopNonceService _nonces;
    private readonly TimeProvider _time;
    private readonly ILogger<DpopProofValidator> _logger;
    private readonly long _lifetimeSeconds;
    private readonly long _skewSeconds;
    private readonly bool _requireNonce;

    public DpopProofValidator(IDpopReplayCache replayCache, IDpopNonceService nonces, IOptions<DpopOptions> options, TimeProvider time, ILogger<DpopProofValidator> logger)
    {
        _replayCache = replayCache;
        _nonces = nonces;
        _time = time;
        _logger = logger;
        _lifetimeSeconds = (long)options.Value.ProofLifetime.TotalSeconds;
        _skewSeconds = (long)options.Value.ClockSkew.TotalSeconds;
        _requireNonce = options.Value.RequireNonce;
    }

    public IReadOnlyList<string> Algorithms => SupportedAlgorithms;

    public async ValueTask<DpopProofResult> ValidateAsync(DpopProofRequest request, CancellationToken cancellationToken)
    {
        var result = Check(request, out var jti, out var iat);
        if (!result.IsValid)
        {
            if (!result.IsAbsent)
            {
                LogProofRefused(_logger, result.Error.ToString());
            }

            return result;
        }

        // RFC 9449 §11.1: one use per proof. The key is scoped to the proof key, so nobody can spend another client's
        // jti values; the entry lasts as long as the proof would be accepted.
        var expiresAt = DateTimeOffset.FromUnixTimeSeconds(iat + _lifetimeSeconds);
        if (!await _replayCache.TryAddAsync(result.Thumbprint + ":" + jti, expiresAt, cancellationToken))
        {
            LogProofRefused(_logger, nameof(DpopProofError.Replayed));
            return DpopProofResult.Invalid(DpopProofError.Replayed, "The DPoP proof has already been used.");
        }

        return result;
    }

    private DpopProofResult Check(in DpopProofRequest request, out string? jti, out long iat)
    {
        jti = null;
        iat = 0;
        string thumbprint;

        // §4.3 items 1 and 2: one header, one compact JWS.
        var proofs = request.Proofs;
        if (proofs.Count == 0)
        {
            return DpopProofResult.Absent;
        }

        if (proofs.Count > 1)
        {
            return DpopProofResult.Invalid(DpopProofError.Malformed, "Send exactly one DPoP header.");
        }

        var value = proofs[0];
        if (string.IsNullOrEmpty(value))
        {
            return DpopProofResult.Invalid(DpopProofError.Malformed, "The DPoP header is empty.");
        }

        if (value.Length > MaxProofLength)
        {
            return DpopProofResult.Invalid(DpopProofError.TooLarge, "The DPoP proof is too large.");
        }

        if (value.AsSpan().Count('.') != 2)
        {
            return DpopProofResult.Invalid(DpopProofError.Malformed, "The DPoP proof is not a compact JWS.");
        }

        // RFC 7515 §7.1: strict base64url in every segment, as for every JWS the product reads. IdentityModel's decoder
        // accepts padding and whitespace, and one proof must not have two texts (or one jwk two thumbprints).
        if (!Base64UrlEncoding.IsStrictCompactJws(value))
        {
            return DpopProofResult.Invalid(DpopProofError.Malformed, "The DPoP proof is not strict base64url.");
        }

        JsonWebToken token;
        JsonWebKey key;
        try
        {
            token = new JsonWebToken(value);
            using var header = JsonDocument.Parse(Base64UrlEncoding.DecodeStrict(token.EncodedHeader) ?? throw new FormatException(), new JsonDocumentOptions { MaxDepth = 8 });
            if (header.RootElement.ValueKind != JsonValueKind.Object)
            {
                return DpopProofResult.Invalid(DpopProofError.Malformed, "The DPoP proof is not a well-formed JWT.");
            }

            // RFC 7515 §4.1.11: a recipient that does not understand every extension named in crit must reject the JWS;
            // RFC 9449 defines none for proofs and we understand none, so any crit is refused.
            if (header.RootElement.TryGetProperty("crit", out _))
            {
                return DpopProofResult.Invalid(DpopProofError.Malformed, "The DPoP proof's header has crit, which this server does not support.");
            }

            // §4.3 item 4 and §11.5: explicitly typed (RFC 7515 §4.1.9 allows the "application/" prefix).
            if (!string.Equals(token.Typ, "dpop+jwt", StringComparison.OrdinalIgnoreCase)
                && !string.Equals(token.Typ, "application/dpop+jwt", StringComparison.OrdinalIgnoreCase))
            {
                return DpopProofResult.Invalid(DpopProofError.WrongType, "The DPoP proof's typ must be dpop+jwt.");
            }

            // §4.3 item 5: an allowed asymmetric algorithm (never none, never a MAC).
            var alg = token.Alg;
            if (alg is null || JwsAlgorithms.Canonicalize(alg) is null)
            {
                return DpopProofResult.Invalid(DpopProofError.AlgorithmNotAllowed, "The DPoP proof's alg is not allowed.");
            }

            // §4.3 item 7: a public key of the algorithm's type, nothing private; a jwk that names its own alg allows that
            // alg alone (RFC 7517 §4.4, RFC 8725 §3.1), as for every key of the product.
            if (ReadPublicKey(header.RootElement, alg) is not { } publicKey || !JwsAlgorithms.KeyAllows(publicKey, alg))
            {
                return DpopProofResult.Invalid(DpopProofError.InvalidKey, "The DPoP proof's jwk must be a public key for its alg.");
            }

            key = publicKey;
            thumbprint = Base64UrlEncoding.Encode(key.ComputeJwkThumbprint());

            // §4.3 item 6: the signature verifies with that key.
            if (string.IsNullOrEmpty(token.EncodedSignature) || !Verify(value, token.EncodedSignature, VerifierFor(thumbprint, key, alg)))
            {
                return DpopProofResult.Invalid(DpopProofError.InvalidSignature, "The DPoP proof's signature does not verify with its jwk.");
            }
        }
        catch (Exception ex) when (ex is ArgumentException or FormatException or JsonException or SecurityTokenException or CryptographicException or NotSupportedException or InvalidOperationException)
        {
            // Crafted input (bad base64url or JSON, a point off the curve): refused, never a 500.
            return DpopProofResult.Invalid(DpopProofError.Malformed, "The DPoP proof is not a well-formed JWT.");
        }

        // §4.3 item 3: the required claims.
        if (!token.TryGetPayloadValue<string>("jti", out jti) || string.IsNullOrEmpty(jti) || jti.Length > MaxJtiLength
            || !token.TryGetPayloadValue<string>("htm", out var htm) || string.IsNullOrEmpty(htm)
            || !token.TryGetPayloadValue<string>("htu", out var htu) || string.IsNullOrEmpty(htu)
            || !TryGetNumericDate(token, out iat))
        {
            return DpopProofResult.Invalid(DpopProofError.MissingClaims, "The DPoP proof needs jti, htm, htu and iat.");
        }

        // §4.3 item 8: the method, case-sensitive (RFC 9110 §9.1).
        if (!string.Equals(htm, request.Method, StringComparison.Ordinal))
        {
            return DpopProofResult.Invalid(DpopProofError.MethodMismatch, "The DPoP proof's htm does not match the request method.");
        }

        // §4.3 item 9: the URI, without query and fragment, after RFC 3986 normalisation.
        if (!HtuNormalizer.AreEquivalent(htu, request.Uri) && (request.AlternateUri is null || !HtuNormalizer.AreEquivalent(htu, request.AlternateUri)))
        {
            return DpopProofResult.Invalid(DpopProofError.UriMismatch, "The DPoP proof's htu does not match the request URI.");
        }

        // §4.3 item 11 and §11.1: created recently, and not in the future beyond the skew.
        var now = _time.GetUtcNow().ToUnixTimeSeconds();
        if (now - iat > _lifetimeSeconds || iat - now > _skewSeconds)
        {
            return DpopProofResult.Invalid(DpopProofError.Stale, "The DPoP proof's iat is outside the accepted window.");
        }

        // §4.3 item 12 and §7: bound to the access token presented with it.
        if (request.AccessToken is { } accessToken
            && (!token.TryGetPayloadValue<string>("ath", out var ath) || !string.Equals(ath, AccessTokenHash(accessToken), StringComparison.Ordinal)))
        {
            return DpopProofResult.Invalid(DpopProofError.AccessTokenHashMismatch, "The DPoP proof's ath does not match the access token.");
        }

        // §4.3 item 10, §8 and §11.3: with nonces on, every proof carries a recent one of ours.
        if (_requireNonce && (!token.TryGetPayloadValue<string>("nonce", out var nonce) || !_nonces.IsValid(nonce)))
        {
            return DpopProofResult.Invalid(DpopProofError.NonceRequired, "A recent DPoP-Nonce is required in the DPoP proof.");
        }

        return DpopProofResult.Valid(thumbprint);
    }

    /// <summary>RFC 9449 §4.2 <c>ath</c>: base64url SHA-256 of the ASCII access token.</summary>
    public static string AccessTokenHash(string accessToken)
    {
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Encoding.ASCII.GetBytes(accessToken), hash);
        return Base64UrlEncoding.Encode(hash);
    }

    /// <summary>The <c>jwk</c> header as a key, when it is a public EC or RSA key that fits <paramref name="alg"/>.</summary>
    private static JsonWebKey? ReadPublicKey(JsonElement header, string alg)
    {
        if (!header.TryGetProperty("jwk", out var jwk) || jwk.ValueKind != JsonValueKind.Object)
        {
            return null;
        }

        foreach (var member in PrivateMembers)
        {
            if (jwk.TryGetProperty(member, out _))
            {
                return null;
            }
        }

        var kty = jwk.TryGetProperty("kty", out var ktyValue) && ktyValue.ValueKind == JsonValueKind.String ? ktyValue.GetString() : null;
        var fits = alg[0] switch
        {
            'E' => kty == "EC" && JwsAlgorithms.CurveFor(alg) is { } curve && jwk.TryGetProperty("crv", out var crv) && crv.ValueKind == JsonValueKind.String && crv.GetString() == curve
                && HasString(jwk, "x") && HasString(jwk, "y"),
            _ => kty == "RSA" && IsAcceptableRsaKey(jwk),
        };
        return fits ? new JsonWebKey(jwk.GetRawText()) : null;
    }

    /// <summary>
    /// The RSA public key's size and exponent measured on its octets, not on the length of its base64url text: a
    /// short modulus padded with zero octets must not pass as a long one, and leading zeros would give one key several
    /// RFC 7638 thumbprints. RFC 7518 §6.3.1.1 and §6.3.1.2: <c>n</c> and <c>e</c> are unsigned big-endian integers
    /// without leading zero octets. RFC 7518 §3.3: a key of 2048 bits or more. The exponent is odd and at least 3
    /// (RFC 8017 §3.1; e = 1 makes every padded digest its own signature), and the modulus, a product of odd primes, is odd.
    /// </summary>
    private static bool IsAcceptableRsaKey(JsonElement jwk)
    {
        if (!jwk.TryGetProperty("n", out var nValue) || nValue.ValueKind != JsonValueKind.String
            || !jwk.TryGetProperty("e", out var eValue) || eValue.ValueKind != JsonValueKind.String
            || nValue.GetString()!.Length > 1366 || eValue.GetString()!.Length is 0 or > 43)
        {
            return false; // more than 8192 bits of modulus, or an exponent beyond 256 bits (FIPS 186-5 §A.1.1)
        }

        var n = Base64UrlEncoding.DecodeStrict(nValue.GetString());
        var e = Base64UrlEncoding.DecodeStrict(eValue.GetString());
        if (n is null || e is null || n.Length == 0 || n[0] == 0 || e.Length == 0 || e[0] == 0)
        {
            return false;
        }

        var modulusBits = ((n.Length - 1) * 8) + (32 - System.Numerics.BitOperations.LeadingZeroCount((uint)n[0]));
        var exponentAtLeastThree = e.Length > 1 || e[0] >= 3;
        return modulusBits >= JwsAlgorithms.MinimumRsaKeySizeBits && modulusBits <= 8192 && (e[^1] & 1) == 1 && exponentAtLeastThree && (n[^1] & 1) == 1;
    }

    private static bool HasString(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String && value.GetString()!.Length > 0;

    private SignatureProvider VerifierFor(string thumbprint, JsonWebKey key, string alg)
    {
        var cacheKey = alg + ":" + thumbprint;
        if (_verifiers.TryGetValue(cacheKey, out var cached))
        {
            return cached;
        }

        if (_verifiers.Count >= MaxCachedVerifiers)
        {
            // Dropped providers are not disposed: another request may still be verifying with one.
            _verifiers.Clear();
        }

        return _verifiers.GetOrAdd(cacheKey, Crypto.CreateForVerifying(ToSecurityKey(key), alg));
    }

    /// <summary>The public key imported once, so that the cached provider verifies without parsing the JWK again.</summary>
    private static AsymmetricSecurityKey ToSecurityKey(JsonWebKey key)
    {
        if (key.Kty == JsonWebAlgorithmsKeyTypes.EllipticCurve)
        {
            return new ECDsaSecurityKey(ECDsa.Create(new ECParameters
            {
                Curve = JwsAlgorithms.NamedCurve(key.Crv) ?? throw new NotSupportedException("The jwk's curve is not supported."),
                Q = new ECPoint { X = Strict(key.X), Y = Strict(key.Y) },
            }));
        }

        return new RsaSecurityKey(new RSAParameters { Modulus = Strict(key.N), Exponent = Strict(key.E) });
    }

    private static bool Verify(string compact, string encodedSignature, SignatureProvider provider)
    {
        var signingInputLength = compact.Length - encodedSignature.Length - 1;
        var signingInput = Encoding.ASCII.GetBytes(compact, 0, signingInputLength);
        var signature = Strict(encodedSignature);
        return provider.Verify(signingInput, signature);
    }

    // Only strict base64url reaches here (checked above); a FormatException is a malformed proof, never a 500.
    private static byte[] Strict(string? text) => Base64UrlEncoding.DecodeStrict(text) ?? throw new FormatException("Not strict base64url.");

    /// <summary><c>iat</c> as a NumericDate (RFC 7519 §2: seconds, possibly with a fraction).</summary>
    private static bool TryGetNumericDate(JsonWebToken token, out long seconds)
    {
        if (token.TryGetPayloadValue<long>("iat", out seconds))
        {
            return true;
        }

        if (token.TryGetPayloadValue<double>("iat", out var fractional) && double.IsFinite(fractional) && fractional is > 0 and < 1e11)
        {
            seconds = (long)fractional;
            return true;
        }

        return false;
    }

    [LoggerMessage(EventId = 6001, Level = LogLevel.Information, Message = "DPoP proof refused: {Reason}.")]
    private static partial void LogProofRefused(ILogger logger, string reason);
}
