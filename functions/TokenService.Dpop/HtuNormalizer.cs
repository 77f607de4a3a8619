using System.Globalization;
using System.Text;

namespace TokenService.Dpop;

/// <summary>
/// Normalises an http(s) URI for the <c>htu</c> comparison of RFC 9449 §4.3: query and fragment dropped, then
/// syntax-based normalisation (RFC 3986 §6.2.2: scheme and host lower case, percent-encodings upper case, encoded
/// unreserved characters decoded, dot segments removed) and scheme-based normalisation (§6.2.3: default and empty
/// ports dropped, empty path is "/"). Written here because neither System.Uri (which keeps some encodings and differs
/// between platforms) nor Microsoft.IdentityModel offers exactly this comparison.
/// </summary>
public static class HtuNormalizer
{
    /// <summary>Longest URI compared; anything longer is refused rather than normalised.</summary>
    public const int MaxLength = 2048;

    /// <summary>The normalised form, or null when <paramref name="uri"/> is not an absolute http(s) URI without user info.</summary>
    public static string? Normalize(string? uri)
    {
        if (string.IsNullOrEmpty(uri) || uri.Length > MaxLength)
        {
            return null;
        }

        var span = uri.AsSpan();
        var cut = span.IndexOfAny('?', '#');
        if (cut >= 0)
        {
            span = span[..cut];
        }

        var colon = span.IndexOf("://", StringComparison.Ordinal);
        if (colon <= 0)
        {
            return null;
        }

        var scheme = span[..colon].ToString().ToLowerInvariant();
        var defaultPort = scheme switch
        {
            "https" => 443,
            "http" => 80,
            _ => -1,
        };
        if (defaultPort < 0)
        {
            return null;
        }

        var rest = span[(colon + 3)..];
        var slash = rest.IndexOf('/');
        var authority = slash >= 0 ? rest[..slash] : rest;
        var path = slash >= 0 ? rest[slash..] : "/".AsSpan();
        if (authority.IsEmpty || authority.Contains('@') || authority.ContainsAny(' ', '\\'))
        {
            return null;
        }

        // The port follows the last ':' outside an IPv6 literal ("[::1]:8443").
        var portSeparator = authority.LastIndexOf(':');
        if (portSeparator >= 0 && authority.LastIndexOf(']') > portSeparator)
        {
            portSeparator = -1;
        }

        var host = portSeparator >= 0 ? authority[..portSeparator] : authority;
        var port = portSeparator >= 0 ? authority[(portSeparator + 1)..] : [];
        if (host.IsEmpty)
        {
            return null;
        }

        var builder = new StringBuilder(uri.Length + 8);
        builder.Append(scheme).Append("://");
        if (!AppendPercentNormalized(builder, host, lowerCase: true))
        {
            return null;
        }

        if (!port.IsEmpty)
        {
            if (port.Length > 5 || !int.TryParse(port, NumberStyles.None, CultureInfo.InvariantCulture, out var number) || number > 65535)
            {
                return null;
            }

            if (number != defaultPort)
            {
                builder.Append(':').Append(number.ToString(CultureInfo.InvariantCulture));
            }
        }

        var decodedPath = new StringBuilder(path.Length);
        if (!AppendPercentNormalized(decodedPath, path, lowerCase: false))
        {
            return null;
        }

        builder.Append(RemoveDotSegments(decodedPath.ToString()));
        return builder.ToString();
    }

    /// <summary>True when both are http(s) URIs that are equal after normalisation.</summary>
    public static bool AreEquivalent(string? presented, string expected) =>
        string.Equals(presented, expected, StringComparison.Ordinal)
            || (Normalize(presented) is { } a && Normalize(expected) is { } b && string.Equals(a, b, StringComparison.Ordinal));

    /// <summary>RFC 3986 §6.2.2.1/§6.2.2.2: hex digits upper case, encoded unreserved characters decoded.</summary>
    private static bool AppendPercentNormalized(StringBuilder builder, ReadOnlySpan<char> value, bool lowerCase)
    {
        for (var i = 0; i < value.Length; i++)
        {
            var c = value[i];
            if (c == '%')
            {
                if (i + 2 >= value.Length || !char.IsAsciiHexDigit(value[i + 1]) || !char.IsAsciiHexDigit(value[i + 2]))
                {
                    return false;
                }

                var decoded = (char)((HexValue(value[i + 1]) << 4) | HexValue(value[i + 2]));
                if (IsUnreserved(decoded))
                {
                    builder.Append(lowerCase ? char.ToLowerInvariant(decoded) : decoded);
                }
                else
                {
                    builder.Append('%').Append(char.ToUpperInvariant(value[i + 1])).Append(char.ToUpperInvariant(value[i + 2]));
                }

                i += 2;
            }
            else if (c <= ' ' || c >= '\u007f')
            {
                // Not a URI character (RFC 3986 §2): a client must percent-encode it.
                return false;
            }
            else
            {
                builder.Append(lowerCase ? char.ToLowerInvariant(c) : c);
            }
        }

        return true;
    }

    /// <summary>RFC 3986 §5.2.4 remove_dot_segments, for an absolute path.</summary>
    private static string RemoveDotSegments(string path)
    {
        if (!path.Contains('.', StringComparison.Ordinal))
        {
            return path;
        }

        var segments = path.Split('/');
        var output = new List<string>(segments.Length);
        for (var i = 1; i < segments.Length; i++)
        {
            var segment = segments[i];
            var last = i == segments.Length - 1;
            if (segment is "." or "..")
            {
                if (segment == ".." && output.Count > 0)
                {
                    output.RemoveAt(output.Count - 1);
                }

                if (last)
                {
                    output.Add(string.Empty);
                }

                continue;
            }

            output.Add(segment);
        }

        return "/" + string.Join('/', output);
    }

    private static bool IsUnreserved(char c) => char.IsAsciiLetterOrDigit(c) || c is '-' or '.' or '_' or '~';

    private static int HexValue(char c) => c <= '9' ? c - '0' : (char.ToUpperInvariant(c) - 'A' + 10);
}
