using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Unicode;

namespace TokenService.Jwt;

/// <summary>
/// Reads JSON strings from untrusted input without exceptions escaping. System.Text.Json accepts, while tokenizing,
/// text it later refuses to decode: a lone surrogate escape (<c>"\ud800"</c>, which RFC 8259 §8.2 leaves
/// "unpredictable") and invalid UTF-8 inside a string (RFC 8259 §8.1 requires UTF-8) only throw
/// <see cref="InvalidOperationException"/> when <c>GetString</c>, <c>ValueEquals</c>, <c>JsonProperty.Name</c> or
/// <c>TryGetProperty</c> decodes them; <c>GetString</c> on another kind of value throws too. Every reader of
/// crafted input (JOSE headers and claims, event deliveries) goes through this type, so such input is a
/// validation failure and never an unhandled exception.
/// </summary>
public static class JsonText
{
    /// <summary>
    /// The current string (or property name) token as text; false for other token kinds and for text that is not
    /// Unicode (invalid UTF-8, unpaired surrogate escapes).
    /// </summary>
    public static bool TryGetString(ref Utf8JsonReader reader, out string? value)
    {
        value = null;
        if (reader.TokenType is not (JsonTokenType.String or JsonTokenType.PropertyName))
        {
            return false;
        }

        try
        {
            value = reader.GetString();
            return value is not null;
        }
        catch (InvalidOperationException)
        {
            // Thrown by the transcoder for invalid UTF-8 and by the unescaper for unpaired surrogates.
            return false;
        }
    }

    /// <summary>The element's text; false when it is not a JSON string or its text is not Unicode.</summary>
    public static bool TryGetString(JsonElement element, out string? value)
    {
        value = null;
        if (element.ValueKind != JsonValueKind.String)
        {
            return false;
        }

        try
        {
            value = element.GetString();
            return value is not null;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }

    /// <summary>The element's text, or null when it is absent, not a string or not Unicode.</summary>
    public static string? GetStringOrNull(JsonElement element) => TryGetString(element, out var value) ? value : null;

    /// <summary>
    /// <see cref="JsonElement.TryGetProperty(string, out JsonElement)"/> that is false, instead of throwing, for a
    /// value that is not an object and for an object whose escaped member names are not Unicode.
    /// </summary>
    public static bool TryGetProperty(JsonElement obj, string name, out JsonElement value)
    {
        value = default;
        if (obj.ValueKind != JsonValueKind.Object)
        {
            return false;
        }

        try
        {
            return obj.TryGetProperty(name, out value);
        }
        catch (InvalidOperationException)
        {
            // The lookup unescapes member names to compare them; "\udc00…" cannot be unescaped.
            return false;
        }
    }

    /// <summary>The string value of <paramref name="name"/> in an object, or null when absent, of another kind or not Unicode.</summary>
    public static string? GetStringOrNull(JsonElement obj, string name) =>
        TryGetProperty(obj, name, out var value) ? GetStringOrNull(value) : null;

    /// <summary>
    /// True when <paramref name="utf8Json"/> is one JSON value, no deeper than <paramref name="maxDepth"/>, that is
    /// valid UTF-8 throughout (RFC 8259 §8.1) and whose every string and member name decodes to Unicode text (no
    /// unpaired surrogate escapes). Once a document passed this check, property lookups and string reads on it cannot
    /// throw for its text; callers still check each value's kind.
    /// </summary>
    public static bool IsWellFormed(ReadOnlySpan<byte> utf8Json, int maxDepth = 64)
    {
        if (!Utf8.IsValid(utf8Json))
        {
            return false;
        }

        var reader = new Utf8JsonReader(utf8Json, new JsonReaderOptions { MaxDepth = maxDepth });
        try
        {
            while (reader.Read())
            {
                // Unescaped text is a slice of the (already valid) UTF-8 input; only escapes can spell an unpaired surrogate.
                if (reader.TokenType is JsonTokenType.String or JsonTokenType.PropertyName && reader.ValueIsEscaped
                    && !TryGetString(ref reader, out _))
                {
                    return false;
                }
            }

            // A final-block reader has refused trailing content and empty input by now.
            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    /// <summary><see cref="IsWellFormed(ReadOnlySpan{byte}, int)"/> for a parsed element, over its raw UTF-8 text.</summary>
    public static bool IsWellFormed(JsonElement element, int maxDepth = 64) =>
        element.ValueKind != JsonValueKind.Undefined && IsWellFormed(JsonMarshal.GetRawUtf8Value(element), maxDepth);
}
