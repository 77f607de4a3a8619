using System.Text.Json;
using System.Text.Unicode;

namespace TokenService.Jwt;

/// <summary>
/// The registered and product claims of a JWT payload, read once with <see cref="Utf8JsonReader"/> by
/// <see cref="JwsPrecheck"/> before Microsoft.IdentityModel verifies the token, and handed to callers once it has.
/// Duplicate claim names are refused (RFC 7519 §4 allows rejecting them; we do, so that this reader and IdentityModel's,
/// which keeps the last duplicate, can never disagree about a claim's value), as are registered claims of another JSON
/// kind, text that is not Unicode and nesting deeper than <see cref="JwtValidationOptions.MaxPayloadDepth"/>.
/// </summary>
public sealed class JwtClaims
{
    private static readonly string[] NoStrings = [];

    public string? Issuer { get; private set; }
    public string? Subject { get; private set; }
    public IReadOnlyList<string> Audiences { get; private set; } = NoStrings;
    public long? ExpiresAt { get; private set; }
    public long? NotBefore { get; private set; }
    public long? IssuedAt { get; private set; }
    public string? JwtId { get; private set; }
    public string? SessionId { get; private set; }
    public string? ClientId { get; private set; }
    public string? Scope { get; private set; }
    public long? AuthTime { get; private set; }
    public string? Acr { get; private set; }
    public IReadOnlyList<string> Amr { get; private set; } = NoStrings;
    public string? Nonce { get; private set; }

    /// <summary>Top-level string claims named in <see cref="JwtValidationOptions.AdditionalClaims"/>.</summary>
    public IReadOnlyDictionary<string, string>? Additional { get; private set; }

    public string? GetClaim(string name) => name switch
    {
        "sub" => Subject,
        "iss" => Issuer,
        "jti" => JwtId,
        "sid" => SessionId,
        "client_id" => ClientId,
        _ => Additional is not null && Additional.TryGetValue(name, out var value) ? value : null,
    };

    internal static JwtClaims? TryRead(ReadOnlySpan<byte> json, IReadOnlyList<string>? additionalClaims, int maxDepth)
    {
        // RFC 7519 §7.2 step 10: the claims set must be UTF-8 text. Utf8JsonReader tokenizes invalid UTF-8 inside
        // strings and only fails when decoding them, so the whole payload is checked before any claim is read.
        if (!Utf8.IsValid(json))
        {
            return null;
        }

        var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = maxDepth });
        var payload = new JwtClaims();
        Dictionary<string, string>? additional = null;
        var seen = 0;
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return null;
            }

            while (reader.Read())
            {
                if (reader.TokenType == JsonTokenType.EndObject)
                {
                    // Nothing may follow the object (the reader refuses trailing content on the next Read).
                    payload.Additional = additional;
                    return reader.Read() ? null : payload;
                }

                if (reader.TokenType != JsonTokenType.PropertyName)
                {
                    return null;
                }

                var bit = reader.ValueSpan switch
                {
                    var n when n.SequenceEqual("iss"u8) => 1 << 0,
                    var n when n.SequenceEqual("sub"u8) => 1 << 1,
                    var n when n.SequenceEqual("aud"u8) => 1 << 2,
                    var n when n.SequenceEqual("exp"u8) => 1 << 3,
                    var n when n.SequenceEqual("nbf"u8) => 1 << 4,
                    var n when n.SequenceEqual("iat"u8) => 1 << 5,
                    var n when n.SequenceEqual("jti"u8) => 1 << 6,
                    var n when n.SequenceEqual("sid"u8) => 1 << 7,
                    var n when n.SequenceEqual("client_id"u8) => 1 << 8,
                    var n when n.SequenceEqual("scope"u8) => 1 << 9,
                    var n when n.SequenceEqual("auth_time"u8) => 1 << 10,
                    var n when n.SequenceEqual("acr"u8) => 1 << 11,
                    var n when n.SequenceEqual("amr"u8) => 1 << 12,
                    var n when n.SequenceEqual("nonce"u8) => 1 << 13,
                    _ => 0,
                };
                if (reader.ValueIsEscaped)
                {
                    // Escaped names could spell a registered claim twice; such tokens are not ours to accept.
                    return null;
                }

                if (bit == 0)
                {
                    string? name = null;
                    if (additionalClaims is { Count: > 0 } && !JsonText.TryGetString(ref reader, out name))
                    {
                        return null;
                    }

                    if (!reader.Read())
                    {
                        return null;
                    }

                    if (name is not null && reader.TokenType == JsonTokenType.String && Contains(additionalClaims!, name))
                    {
                        additional ??= new Dictionary<string, string>(StringComparer.Ordinal);
                        if (!JsonText.TryGetString(ref reader, out var claim) || !additional.TryAdd(name, claim!))
                        {
                            return null;
                        }
                    }
                    else if (!reader.TrySkip())
                    {
                        return null;
                    }

                    continue;
                }

                if ((seen & bit) != 0 || !reader.Read())
                {
                    return null;
                }

                seen |= bit;
                bool ok;
                switch (bit)
                {
                    case 1 << 0: ok = TryString(ref reader, out var iss); payload.Issuer = iss; break;
                    case 1 << 1: ok = TryString(ref reader, out var sub); payload.Subject = sub; break;
                    case 1 << 2: ok = TryStringOrArray(ref reader, out var aud); payload.Audiences = aud; break;
                    case 1 << 3: ok = TryNumericDate(ref reader, out var exp); payload.ExpiresAt = exp; break;
                    case 1 << 4: ok = TryNumericDate(ref reader, out var nbf); payload.NotBefore = nbf; break;
                    case 1 << 5: ok = TryNumericDate(ref reader, out var iat); payload.IssuedAt = iat; break;
                    case 1 << 6: ok = TryString(ref reader, out var jti); payload.JwtId = jti; break;
                    case 1 << 7: ok = TryString(ref reader, out var sid); payload.SessionId = sid; break;
                    case 1 << 8: ok = TryString(ref reader, out var clientId); payload.ClientId = clientId; break;
                    case 1 << 9: ok = TryString(ref reader, out var scope); payload.Scope = scope; break;
                    case 1 << 10: ok = TryNumericDate(ref reader, out var authTime); payload.AuthTime = authTime; break;
                    case 1 << 11: ok = TryString(ref reader, out var acr); payload.Acr = acr; break;
                    case 1 << 12: ok = TryStringOrArray(ref reader, out var amr); payload.Amr = amr; break;
                    default: ok = TryString(ref reader, out var nonce); payload.Nonce = nonce; break;
                }

                if (!ok)
                {
                    return null;
                }
            }
        }
        catch (JsonException)
        {
            return null;
        }

        return null;
    }

    private static bool Contains(IReadOnlyList<string> names, string name)
    {
        for (var i = 0; i < names.Count; i++)
        {
            if (string.Equals(names[i], name, StringComparison.Ordinal))
            {
                return true;
            }
        }

        return false;
    }

    // A claim of another JSON kind, or whose text is not Unicode (an unpaired surrogate escape), makes the claims set
    // invalid rather than absent: RFC 7519 §4.1 defines these claims as strings.
    private static bool TryString(ref Utf8JsonReader reader, out string? value) =>
        JsonText.TryGetString(ref reader, out value) && reader.TokenType == JsonTokenType.String;

    private static bool TryStringOrArray(ref Utf8JsonReader reader, out IReadOnlyList<string> values)
    {
        values = NoStrings;
        if (reader.TokenType == JsonTokenType.String)
        {
            if (!JsonText.TryGetString(ref reader, out var single))
            {
                return false;
            }

            values = [single!];
            return true;
        }

        if (reader.TokenType != JsonTokenType.StartArray)
        {
            return false;
        }

        var list = new List<string>(2);
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (reader.TokenType != JsonTokenType.String || list.Count >= 64 || !JsonText.TryGetString(ref reader, out var item))
            {
                return false;
            }

            list.Add(item!);
        }

        values = list;
        return true;
    }

    // RFC 7519 §2 NumericDate: seconds since the epoch, possibly non-integer.
    private static bool TryNumericDate(ref Utf8JsonReader reader, out long? value)
    {
        value = null;
        if (reader.TokenType != JsonTokenType.Number || !reader.TryGetDouble(out var number)
            || double.IsNaN(number) || number < 0 || number > 253402300799d)
        {
            return false;
        }

        value = (long)Math.Floor(number);
        return true;
    }
}
