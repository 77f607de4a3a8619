using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace TokenService.Validation.Jose;

/// <summary>
/// A public JSON Web Key (RFC 7517) of type RSA or EC. Private members are never read or written:
/// anything that reaches a JWKS document comes through this type and so carries public fields only.
/// </summary>
public sealed class JsonWebKey
{
    public required string Kty { get; init; }
    public string? Kid { get; init; }
    public string? Use { get; init; }
    public string? Alg { get; init; }
    public string? N { get; init; }
    public string? E { get; init; }
    public string? Crv { get; init; }
    public string? X { get; init; }
    public string? Y { get; init; }

    public static JsonWebKey FromRsa(RSAParameters parameters, string? alg = null) => new()
    {
        Kty = "RSA",
        Alg = alg,
        Use = "sig",
        N = Base64UrlEncoding.Encode(parameters.Modulus),
        E = Base64UrlEncoding.Encode(parameters.Exponent),
    };

    public static JsonWebKey FromEc(ECParameters parameters, string? alg = null) => new()
    {
        Kty = "EC",
        Alg = alg,
        Use = "sig",
        Crv = parameters.Curve.Oid.FriendlyName switch
        {
            "nistP256" or "ECDSA_P256" => "P-256",
            "nistP384" or "ECDSA_P384" => "P-384",
            "nistP521" or "ECDSA_P521" => "P-521",
            var other => throw new ArgumentException($"Unsupported curve {other}.", nameof(parameters)),
        },
        X = Base64UrlEncoding.Encode(parameters.Q.X),
        Y = Base64UrlEncoding.Encode(parameters.Q.Y),
    };

    /// <summary>Copies this key with <paramref name="kid"/> set.</summary>
    public JsonWebKey WithKid(string kid) => new()
    {
        Kty = Kty, Kid = kid, Use = Use, Alg = Alg, N = N, E = E, Crv = Crv, X = X, Y = Y,
    };

    /// <summary>
    /// RFC 7638 §3: SHA-256 over the required members in lexicographic order with no whitespace,
    /// base64url-encoded. Used as the <c>kid</c> of our own keys (CONTRACT §2).
    /// </summary>
    public string ComputeThumbprint()
    {
        string canonical = Kty switch
        {
            "RSA" => $"{{\"e\":\"{E}\",\"kty\":\"RSA\",\"n\":\"{N}\"}}",
            "EC" => $"{{\"crv\":\"{Crv}\",\"kty\":\"EC\",\"x\":\"{X}\",\"y\":\"{Y}\"}}",
            _ => throw new InvalidOperationException($"Unsupported key type {Kty}."),
        };
        return Base64UrlEncoding.Encode(SHA256.HashData(Encoding.UTF8.GetBytes(canonical)));
    }

    /// <summary>Writes the public members only.</summary>
    public void WriteTo(Utf8JsonWriter writer)
    {
        writer.WriteStartObject();
        writer.WriteString("kty", Kty);
        if (Use is not null) writer.WriteString("use", Use);
        if (Kid is not null) writer.WriteString("kid", Kid);
        if (Alg is not null) writer.WriteString("alg", Alg);
        if (Kty == "RSA")
        {
            writer.WriteString("n", N);
            writer.WriteString("e", E);
        }
        else
        {
            writer.WriteString("crv", Crv);
            writer.WriteString("x", X);
            writer.WriteString("y", Y);
        }

        writer.WriteEndObject();
    }

    /// <summary>
    /// Reads one JWK object. Returns null for keys that cannot verify our allowed algorithms
    /// (symmetric "oct", unknown kty, encryption-only keys, malformed members).
    /// </summary>
    public static JsonWebKey? TryRead(JsonElement element)
    {
        if (element.ValueKind != JsonValueKind.Object)
        {
            return null;
        }

        // A member of another kind, or whose text is not Unicode, is a malformed member: the key is skipped.
        string? Str(string name) => JsonText.GetStringOrNull(element, name);

        var kty = Str("kty");
        var use = Str("use");
        if (use is not null && use != "sig")
        {
            return null;
        }

        var key = kty switch
        {
            "RSA" when Str("n") is { } n && Str("e") is { } e => new JsonWebKey { Kty = "RSA", N = n, E = e },
            "EC" when Str("crv") is { } crv && Str("x") is { } x && Str("y") is { } y => new JsonWebKey { Kty = "EC", Crv = crv, X = x, Y = y },
            _ => null,
        };
        if (key is null)
        {
            return null;
        }

        var alg = Str("alg");
        if (alg is not null && JwsAlgorithms.Canonicalize(alg) is null)
        {
            return null;
        }

        return new JsonWebKey
        {
            Kty = key.Kty, N = key.N, E = key.E, Crv = key.Crv, X = key.X, Y = key.Y,
            Kid = Str("kid"), Use = use, Alg = alg,
        };
    }

    /// <summary>Reads a JWKS document (RFC 7517 §5), skipping keys that cannot verify allowed algorithms.</summary>
    public static IReadOnlyList<JsonWebKey> ReadSet(ReadOnlySpan<byte> json) => ReadSet(json, int.MaxValue);

    /// <summary>Reads a JWKS; a set with more than <paramref name="maxKeys"/> entries is refused whole (FormatException).</summary>
    public static IReadOnlyList<JsonWebKey> ReadSet(ReadOnlySpan<byte> json, int maxKeys)
    {
        // JSON text must be UTF-8 (RFC 8259 §8.1); text that is not Unicode (invalid UTF-8, "\ud800" escapes) would otherwise
        // throw InvalidOperationException from the lookups below instead of the FormatException key resolvers expect.
        if (!JsonText.IsWellFormed(json, 8))
        {
            throw new FormatException("A JWKS document must be UTF-8 JSON text.");
        }

        var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = 8 });
        using var document = JsonDocument.ParseValue(ref reader);
        if (document.RootElement.ValueKind != JsonValueKind.Object
            || !document.RootElement.TryGetProperty("keys", out var keys)
            || keys.ValueKind != JsonValueKind.Array)
        {
            throw new FormatException("A JWKS document must be an object with a \"keys\" array.");
        }

        if (keys.GetArrayLength() > maxKeys)
        {
            throw new FormatException($"A JWKS document may hold at most {maxKeys} keys.");
        }

        var result = new List<JsonWebKey>();
        foreach (var element in keys.EnumerateArray())
        {
            if (TryRead(element) is { } key)
            {
                result.Add(key);
            }
        }

        return result;
    }
}
