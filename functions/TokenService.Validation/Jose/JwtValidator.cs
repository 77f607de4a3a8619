using System.Buffers;
using System.Text;
using System.Text.Json;
using System.Text.Unicode;

namespace TokenService.Validation.Jose;

/// <summary>
/// Validates JWS compact serialization (RFC 7515 §7.1) per the JWT BCP (RFC 8725): strict parsing,
/// algorithm bound to the key, keys only from the caller's resolver (header <c>jwk</c>, <c>jku</c>,
/// <c>x5u</c> and <c>x5c</c> are never consulted), then the claim checks.
/// </summary>
public static class JwtValidator
{
    private const int MaxHeaderBytes = 1024;
    private const int MaxSignatureBytes = 512;

    public static ValueTask<JwtValidationResult> ValidateAsync(
        string? token, JwtValidationOptions options, IVerificationKeyResolver keys, DateTimeOffset now, CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(token))
        {
            return ValueTask.FromResult(JwtValidationResult.Fail(JwtValidationError.Malformed, "The token is empty."));
        }

        if (token.Length > options.MaxTokenLength)
        {
            return ValueTask.FromResult(JwtValidationResult.Fail(JwtValidationError.TooLarge, "The token is too large."));
        }

        var firstDot = token.IndexOf('.', StringComparison.Ordinal);
        var secondDot = firstDot < 0 ? -1 : token.IndexOf('.', firstDot + 1);
        if (firstDot <= 0 || secondDot < 0 || secondDot == firstDot + 1 || secondDot == token.Length - 1
            || token.IndexOf('.', secondDot + 1) >= 0)
        {
            return ValueTask.FromResult(JwtValidationResult.Fail(JwtValidationError.Malformed, "A JWS must have exactly three non-empty segments."));
        }

        var header = ReadHeader(token.AsSpan(0, firstDot));
        if (header.Error is not null)
        {
            return ValueTask.FromResult(JwtValidationResult.Fail(header.ErrorKind, header.Error));
        }

        if (!Contains(options.AllowedAlgorithms, header.Alg!))
        {
            return ValueTask.FromResult(JwtValidationResult.Fail(JwtValidationError.UnsupportedAlgorithm, "The token's algorithm is not allowed."));
        }

        if (options.RequireKeyId && header.Kid is null)
        {
            return ValueTask.FromResult(JwtValidationResult.Fail(JwtValidationError.UnknownKey, "The token has no key identifier."));
        }

        if (options.RequiredType is not null && !TypeMatches(header.Typ, options.RequiredType))
        {
            return ValueTask.FromResult(JwtValidationResult.Fail(JwtValidationError.InvalidType, "The token's type is not the expected one."));
        }

        for (var i = 0; i < options.ForbiddenTypes.Count; i++)
        {
            if (TypeMatches(header.Typ, options.ForbiddenTypes[i]))
            {
                return ValueTask.FromResult(JwtValidationResult.Fail(JwtValidationError.InvalidType, "The token's type is not accepted here."));
            }
        }

        var resolving = keys.ResolveAsync(header.Kid, cancellationToken);
        return resolving.IsCompletedSuccessfully
            ? ValueTask.FromResult(Complete(token, firstDot, secondDot, header, resolving.Result, options, now))
            : CompleteAsync(token, firstDot, secondDot, header, resolving, options, now);
    }

    private static async ValueTask<JwtValidationResult> CompleteAsync(
        string token, int firstDot, int secondDot, Header header, ValueTask<KeyResolution> resolving, JwtValidationOptions options, DateTimeOffset now) =>
        Complete(token, firstDot, secondDot, header, await resolving.ConfigureAwait(false), options, now);

    private static JwtValidationResult Complete(
        string token, int firstDot, int secondDot, Header header, KeyResolution resolution, JwtValidationOptions options, DateTimeOffset now)
    {
        if (resolution.Key is not { } key)
        {
            return resolution.SourceUnavailable
                ? JwtValidationResult.Fail(JwtValidationError.KeysUnavailable, "The signing keys cannot be obtained right now.")
                : JwtValidationResult.Fail(JwtValidationError.UnknownKey, "The token's signing key is unknown.");
        }

        if (!key.Allows(header.Alg!))
        {
            return JwtValidationResult.Fail(JwtValidationError.UnsupportedAlgorithm, "The token's algorithm does not match its key.");
        }

        var signatureText = token.AsSpan(secondDot + 1);
        Span<byte> signature = stackalloc byte[MaxSignatureBytes];
        if (Base64UrlEncoding.GetMaxDecodedLength(signatureText.Length) > MaxSignatureBytes
            || !Base64UrlEncoding.TryDecodeStrict(signatureText, signature, out var signatureLength))
        {
            return JwtValidationResult.Fail(JwtValidationError.Malformed, "The signature segment is not valid base64url.");
        }

        var payloadText = token.AsSpan(firstDot + 1, secondDot - firstDot - 1);
        if (!Base64UrlEncoding.IsStrict(payloadText))
        {
            return JwtValidationResult.Fail(JwtValidationError.Malformed, "The payload segment is not valid base64url.");
        }

        // The signing input is ASCII(BASE64URL(header) '.' BASE64URL(payload)) (RFC 7515 §5.2 step 8);
        // both segments were checked to be base64url, so a byte-per-char copy is exact.
        var signingInputLength = secondDot;
        var rented = ArrayPool<byte>.Shared.Rent(signingInputLength + Base64UrlEncoding.GetMaxDecodedLength(payloadText.Length));
        try
        {
            var signingInput = rented.AsSpan(0, signingInputLength);
            Encoding.ASCII.GetBytes(token.AsSpan(0, signingInputLength), signingInput);
            if (!key.Verify(header.Alg!, signingInput, signature[..signatureLength]))
            {
                return JwtValidationResult.Fail(JwtValidationError.InvalidSignature, "The token's signature is invalid.");
            }

            var payloadBytes = rented.AsSpan(signingInputLength);
            if (!Base64UrlEncoding.TryDecodeStrict(payloadText, payloadBytes, out var payloadLength))
            {
                return JwtValidationResult.Fail(JwtValidationError.Malformed, "The payload segment is not valid base64url.");
            }

            var payload = JwtPayload.TryRead(payloadBytes[..payloadLength], options.AdditionalClaims, options.MaxPayloadDepth);
            if (payload is null)
            {
                return JwtValidationResult.Fail(JwtValidationError.Malformed, "The payload is not a valid JWT claims set.");
            }

            return CheckClaims(payload, options, now) ?? JwtValidationResult.Success(payload, key.Kid, header.Alg!);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    private static JwtValidationResult? CheckClaims(JwtPayload payload, JwtValidationOptions options, DateTimeOffset now)
    {
        var nowSeconds = now.ToUnixTimeSeconds();
        var skew = (long)options.ClockSkew.TotalSeconds;

        if (options.Issuer is not null && !string.Equals(payload.Issuer, options.Issuer, StringComparison.Ordinal))
        {
            return JwtValidationResult.Fail(JwtValidationError.InvalidIssuer, "The token's issuer is not trusted.");
        }

        if (options.Audiences is not null && !AnyAudience(payload.Audiences, options.Audiences))
        {
            return JwtValidationResult.Fail(JwtValidationError.InvalidAudience, "The token is not meant for this audience.");
        }

        if (payload.ExpiresAt is null)
        {
            if (options.RequireExpiration)
            {
                return JwtValidationResult.Fail(JwtValidationError.MissingClaim, "The token has no expiry (exp).");
            }
        }
        else if (nowSeconds >= payload.ExpiresAt.Value + skew)
        {
            return JwtValidationResult.Fail(JwtValidationError.Expired, "The token has expired.");
        }

        if (payload.NotBefore is { } nbf && nbf > nowSeconds + skew)
        {
            return JwtValidationResult.Fail(JwtValidationError.NotYetValid, "The token is not valid yet.");
        }

        if (payload.IssuedAt is { } iat && iat > nowSeconds + skew)
        {
            return JwtValidationResult.Fail(JwtValidationError.IssuedInFuture, "The token was issued in the future.");
        }

        if (options.RequireSubject && string.IsNullOrEmpty(payload.Subject))
        {
            return JwtValidationResult.Fail(JwtValidationError.MissingClaim, "The token has no subject (sub).");
        }

        return null;
    }

    private static bool AnyAudience(IReadOnlyList<string> actual, IReadOnlyCollection<string> accepted)
    {
        for (var i = 0; i < actual.Count; i++)
        {
            if (accepted.Contains(actual[i]))
            {
                return true;
            }
        }

        return false;
    }

    private static bool Contains(IReadOnlyList<string> list, string value)
    {
        for (var i = 0; i < list.Count; i++)
        {
            if (ReferenceEquals(list[i], value) || string.Equals(list[i], value, StringComparison.Ordinal))
            {
                return true;
            }
        }

        return false;
    }

    // RFC 7515 §4.1.9: media types are case-insensitive and "application/" may be omitted.
    private static bool TypeMatches(string? typ, string expected)
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

    private readonly record struct Header(string? Alg, string? Kid, string? Typ, string? Error, JwtValidationError ErrorKind);

    private static Header ReadHeader(ReadOnlySpan<char> encoded)
    {
        Span<byte> json = stackalloc byte[MaxHeaderBytes];
        if (Base64UrlEncoding.GetMaxDecodedLength(encoded.Length) > MaxHeaderBytes)
        {
            return new Header(null, null, null, "The token header is too large.", JwtValidationError.TooLarge);
        }

        if (!Base64UrlEncoding.TryDecodeStrict(encoded, json, out var length))
        {
            return Bad("The header segment is not valid base64url.");
        }

        // RFC 7515 §5.2 step 3: the decoded header must be UTF-8 text of a valid JSON object. Checked up front because
        // Utf8JsonReader tokenizes invalid UTF-8 inside strings and only fails when the text is decoded.
        if (!Utf8.IsValid(json[..length]))
        {
            return Bad("The header is not UTF-8 text.");
        }

        string? alg = null, kid = null, typ = null;
        var seen = 0;
        var reader = new Utf8JsonReader(json[..length], new JsonReaderOptions { MaxDepth = 4 });
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return Bad("The header is not a JSON object.");
            }

            while (reader.Read() && reader.TokenType != JsonTokenType.EndObject)
            {
                if (reader.TokenType != JsonTokenType.PropertyName || reader.ValueIsEscaped)
                {
                    return Bad("The header is not a valid JOSE header.");
                }

                var bit = reader.ValueSpan switch
                {
                    var n when n.SequenceEqual("alg"u8) => 1,
                    var n when n.SequenceEqual("kid"u8) => 2,
                    var n when n.SequenceEqual("typ"u8) => 4,
                    // RFC 7515 §4.1.11: we understand no extensions, so any "crit" makes the token unacceptable.
                    var n when n.SequenceEqual("crit"u8) => -1,
                    _ => 0,
                };
                if (bit < 0)
                {
                    return Bad("The header names critical extensions that are not supported.");
                }

                if ((seen & bit) != 0 || !reader.Read())
                {
                    return Bad("The header repeats a parameter.");
                }

                seen |= bit;
                if (bit == 0)
                {
                    // jwk, jku, x5u, x5c and every other parameter are ignored (RFC 8725 §3.10): keys come only from configuration.
                    if (!reader.TrySkip())
                    {
                        return Bad("The header is not valid JSON.");
                    }

                    continue;
                }

                if (reader.TokenType != JsonTokenType.String)
                {
                    return Bad("A header parameter has the wrong type.");
                }

                // A value that is not Unicode text (an unpaired surrogate escape such as "\ud800") names no algorithm,
                // key or type: the header is malformed (RFC 7515 §4: parameter values are JSON strings).
                if (!JsonText.TryGetString(ref reader, out var text))
                {
                    return Bad("A header parameter is not valid text.");
                }

                switch (bit)
                {
                    case 1:
                        alg = JwsAlgorithms.Canonicalize(text);
                        if (alg is null)
                        {
                            return new Header(null, null, null, "The token's algorithm is not allowed.", JwtValidationError.UnsupportedAlgorithm);
                        }

                        break;
                    case 2:
                        kid = text;
                        if (kid is null || kid.Length is 0 or > 256 || kid.AsSpan().ContainsAnyInRange((char)0, (char)31))
                        {
                            return Bad("The key identifier is not acceptable.");
                        }

                        break;
                    default:
                        typ = text;
                        break;
                }
            }

            if (reader.Read())
            {
                return Bad("The header has trailing content.");
            }
        }
        catch (JsonException)
        {
            return Bad("The header is not valid JSON.");
        }

        return alg is null
            ? new Header(null, null, null, "The header has no algorithm.", JwtValidationError.UnsupportedAlgorithm)
            : new Header(alg, kid, typ, null, JwtValidationError.None);

        static Header Bad(string message) => new(null, null, null, message, JwtValidationError.Malformed);
    }
}
