using System.Buffers;
using System.Text.Json;
using System.Text.Unicode;

namespace TokenService.Jwt;

/// <summary>The JOSE header members a validator needs before Microsoft.IdentityModel checks the token.</summary>
public readonly record struct JwsHeader(string Alg, string? Kid, string? Typ);

/// <summary>
/// What Microsoft.IdentityModel does not refuse and this product always has (RFC 8725 §2.x hardening; the attack tests in
/// tests/TokenService.Tests/Jose assert each): a length bound before any decoding, exactly three non-empty segments
/// (no JWE, no unsecured JWS), canonical base64url only (no padding, whitespace or '+'/'/'), a header of at most
/// 1 KiB that repeats no parameter and names no <c>crit</c> extension (RFC 7515 §4.1.11: we understand none), an
/// exact-case <c>alg</c> among the asymmetric ones, a <c>kid</c> without control characters, and a claims set that is
/// UTF-8 JSON of bounded depth with no duplicate member names and the registered claims of their defined kinds
/// (<see cref="JwtClaims"/>). IdentityModel's JSON reading keeps the last of two duplicate claims; refusing them here
/// means this reader and IdentityModel's can never disagree about a claim's value, so the <see cref="JwtClaims"/>
/// read here is the claims set IdentityModel then verifies. Signature, algorithm-to-key binding, type, issuer, audience
/// and lifetime are IdentityModel's (<see cref="JwtValidator"/>).
/// </summary>
public static class JwsPrecheck
{
    private const int MaxHeaderBytes = 1024;
    private const int MaxSignatureBytes = 512;

    public readonly record struct Outcome(JwsHeader Header, JwtClaims? Payload, JwtValidationError Error, string? Description)
    {
        public bool IsValid => Error == JwtValidationError.None;
    }

    public static Outcome Check(string? token, JwtValidationOptions options)
    {
        if (string.IsNullOrEmpty(token))
        {
            return Fail(JwtValidationError.Malformed, "The token is empty.");
        }

        if (token.Length > options.MaxTokenLength)
        {
            return Fail(JwtValidationError.TooLarge, "The token is too large.");
        }

        var firstDot = token.IndexOf('.', StringComparison.Ordinal);
        var secondDot = firstDot < 0 ? -1 : token.IndexOf('.', firstDot + 1);
        if (firstDot <= 0 || secondDot < 0 || secondDot == firstDot + 1 || secondDot == token.Length - 1
            || token.IndexOf('.', secondDot + 1) >= 0)
        {
            return Fail(JwtValidationError.Malformed, "A JWS must have exactly three non-empty segments.");
        }

        var header = ReadHeader(token.AsSpan(0, firstDot), out var headerError, out var headerErrorKind);
        if (headerError is not null)
        {
            return Fail(headerErrorKind, headerError);
        }

        if (!Contains(options.AllowedAlgorithms, header.Alg))
        {
            return Fail(JwtValidationError.UnsupportedAlgorithm, "The token's algorithm is not allowed.");
        }

        if (options.RequireKeyId && header.Kid is null)
        {
            return Fail(JwtValidationError.UnknownKey, "The token has no key identifier.");
        }

        var signatureText = token.AsSpan(secondDot + 1);
        if (Base64UrlEncoding.GetMaxDecodedLength(signatureText.Length) > MaxSignatureBytes || !Base64UrlEncoding.IsStrict(signatureText))
        {
            return Fail(JwtValidationError.Malformed, "The signature segment is not valid base64url.");
        }

        var payloadText = token.AsSpan(firstDot + 1, secondDot - firstDot - 1);
        var rented = ArrayPool<byte>.Shared.Rent(Base64UrlEncoding.GetMaxDecodedLength(payloadText.Length));
        try
        {
            if (!Base64UrlEncoding.TryDecodeStrict(payloadText, rented, out var payloadLength))
            {
                return Fail(JwtValidationError.Malformed, "The payload segment is not valid base64url.");
            }

            var payload = JwtClaims.TryRead(rented.AsSpan(0, payloadLength), options.AdditionalClaims, options.MaxPayloadDepth);
            return payload is null
                ? Fail(JwtValidationError.Malformed, "The payload is not a valid JWT claims set.")
                : new Outcome(header, payload, JwtValidationError.None, null);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    private static Outcome Fail(JwtValidationError error, string description) => new(default, null, error, description);

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

    private static JwsHeader ReadHeader(ReadOnlySpan<char> encoded, out string? error, out JwtValidationError errorKind)
    {
        error = null;
        errorKind = JwtValidationError.Malformed;
        Span<byte> json = stackalloc byte[MaxHeaderBytes];
        if (Base64UrlEncoding.GetMaxDecodedLength(encoded.Length) > MaxHeaderBytes)
        {
            errorKind = JwtValidationError.TooLarge;
            error = "The token header is too large.";
            return default;
        }

        if (!Base64UrlEncoding.TryDecodeStrict(encoded, json, out var length))
        {
            error = "The header segment is not valid base64url.";
            return default;
        }

        // RFC 7515 §5.2 step 3: the decoded header must be UTF-8 text of a valid JSON object. Checked up front because
        // Utf8JsonReader tokenizes invalid UTF-8 inside strings and only fails when the text is decoded.
        if (!Utf8.IsValid(json[..length]))
        {
            error = "The header is not UTF-8 text.";
            return default;
        }

        string? alg = null, kid = null, typ = null;
        var seen = 0;
        var reader = new Utf8JsonReader(json[..length], new JsonReaderOptions { MaxDepth = 4 });
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                error = "The header is not a JSON object.";
                return default;
            }

            while (reader.Read() && reader.TokenType != JsonTokenType.EndObject)
            {
                if (reader.TokenType != JsonTokenType.PropertyName || reader.ValueIsEscaped)
                {
                    error = "The header is not a valid JOSE header.";
                    return default;
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
                    error = "The header names critical extensions that are not supported.";
                    return default;
                }

                if ((seen & bit) != 0 || !reader.Read())
                {
                    error = "The header repeats a parameter.";
                    return default;
                }

                seen |= bit;
                if (bit == 0)
                {
                    // jwk, jku, x5u, x5c and every other parameter are ignored (RFC 8725 §3.10): keys come only from
                    // configuration (IdentityModel is given keys by our resolver only, and never fetches jku/x5u).
                    if (!reader.TrySkip())
                    {
                        error = "The header is not valid JSON.";
                        return default;
                    }

                    continue;
                }

                // A value of another kind, or that is not Unicode text (an unpaired surrogate escape such as "\ud800"),
                // names no algorithm, key or type: the header is malformed (RFC 7515 §4: parameter values are strings).
                if (reader.TokenType != JsonTokenType.String || !JsonText.TryGetString(ref reader, out var text))
                {
                    error = "A header parameter is not valid text.";
                    return default;
                }

                switch (bit)
                {
                    case 1:
                        alg = JwsAlgorithms.Canonicalize(text);
                        if (alg is null)
                        {
                            errorKind = JwtValidationError.UnsupportedAlgorithm;
                            error = "The token's algorithm is not allowed.";
                            return default;
                        }

                        break;
                    case 2:
                        kid = text;
                        if (kid is null || kid.Length is 0 or > 256 || kid.AsSpan().ContainsAnyInRange((char)0, (char)31))
                        {
                            error = "The key identifier is not acceptable.";
                            return default;
                        }

                        break;
                    default:
                        typ = text;
                        break;
                }
            }

            if (reader.Read())
            {
                error = "The header has trailing content.";
                return default;
            }
        }
        catch (JsonException)
        {
            error = "The header is not valid JSON.";
            return default;
        }

        if (alg is null)
        {
            errorKind = JwtValidationError.UnsupportedAlgorithm;
            error = "The header has no algorithm.";
            return default;
        }

        return new JwsHeader(alg, kid, typ);
    }
}
