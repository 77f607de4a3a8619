using System.Globalization;
using System.Text;

namespace TokenService.Events;

/// <summary>
/// Makes text that arrived in an event (ids, types, subjects) safe to log as a structured value: control characters
/// (CR, LF, NEL, …), the Unicode line and paragraph separators, bidirectional overrides and unpaired surrogates are
/// escaped as <c>\uXXXX</c>, and the value is cut to <see cref="MaxLength"/> characters, so that no delivery can forge a
/// log line or flood the log (OWASP Logging Cheat Sheet, "Event data sources": sanitise event data before logging;
/// CWE-117).
/// </summary>
public static class LogValue
{
    public const int MaxLength = 128;

    private const char Ellipsis = '…';

    public static string Of(string? value) => Of(value, MaxLength);

    /// <summary>As <see cref="Of(string?)"/>, cut to <paramref name="maxLength"/> characters (at least 2).</summary>
    public static string Of(string? value, int maxLength)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxLength, 2);
        if (value is null)
        {
            return "-";
        }

        var builder = new StringBuilder(Math.Min(value.Length, maxLength));
        for (var i = 0; i < value.Length;)
        {
            var c = value[i];
            var pair = char.IsHighSurrogate(c) && i + 1 < value.Length && char.IsLowSurrogate(value[i + 1]);
            var piece = pair ? value.Substring(i, 2)
                : MustEscape(c) ? "\\u" + ((int)c).ToString("x4", CultureInfo.InvariantCulture)
                : c.ToString();
            i += pair ? 2 : 1;

            // Keep room for the ellipsis unless this is the last piece.
            if (builder.Length + piece.Length > (i >= value.Length ? maxLength : maxLength - 1))
            {
                return builder.Append(Ellipsis).ToString();
            }

            builder.Append(piece);
        }

        return builder.ToString();
    }

    private static bool MustEscape(char c) =>
        char.IsControl(c) || char.IsSurrogate(c) || c == '\\'
        || c is '\u2028' or '\u2029' // line and paragraph separators
        || c is >= '\u202a' and <= '\u202e' // bidirectional embeddings and overrides
        || c is >= '\u2066' and <= '\u2069'; // bidirectional isolates
}
