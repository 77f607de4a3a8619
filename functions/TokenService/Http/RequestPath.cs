using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace TokenService.Http;

/// <summary>Path segments read from the request target as the client sent it, decoded exactly once.</summary>
public static class RequestPath
{
    /// <summary>
    /// The decoded segment at <paramref name="index"/> (0-based, after the leading slash) of the raw request target,
    /// or null when the host does not expose the raw target or the segment is missing or not valid UTF-8.
    /// ASP.NET Core's routing decodes every escape except <c>%2F</c> (so that a segment cannot become two): a route
    /// value of an id holding <c>/</c> stays half-encoded, and decoding it again would corrupt an id holding <c>%</c>.
    /// </summary>
    public static string? Segment(HttpContext context, int index)
    {
        var raw = context.Features.Get<IHttpRequestFeature>()?.RawTarget;
        if (string.IsNullOrEmpty(raw) || raw[0] != '/')
        {
            return null;
        }

        var end = raw.AsSpan().IndexOfAny('?', '#');
        var path = end >= 0 ? raw.AsSpan(0, end) : raw.AsSpan();
        var segments = path[1..];
        for (var i = 0; i < index; i++)
        {
            var slash = segments.IndexOf('/');
            if (slash < 0)
            {
                return null;
            }

            segments = segments[(slash + 1)..];
        }

        var next = segments.IndexOf('/');
        var segment = next >= 0 ? segments[..next] : segments;
        return Decode(segment);
    }

    /// <summary>RFC 3986 percent-decoding to UTF-8; null for a malformed escape or bytes that are not UTF-8.</summary>
    private static string? Decode(ReadOnlySpan<char> segment)
    {
        if (!segment.Contains('%'))
        {
            return segment.ToString();
        }

        var bytes = new byte[Encoding.UTF8.GetMaxByteCount(segment.Length)];
        var length = 0;
        for (var i = 0; i < segment.Length; i++)
        {
            var c = segment[i];
            if (c == '%')
            {
                if (i + 2 >= segment.Length || !IsHex(segment[i + 1]) || !IsHex(segment[i + 2]))
                {
                    return null;
                }

                bytes[length++] = Convert.ToByte(segment.Slice(i + 1, 2).ToString(), 16);
                i += 2;
            }
            else
            {
                length += Encoding.UTF8.GetBytes(segment.Slice(i, 1), bytes.AsSpan(length));
            }
        }

        try
        {
            return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes, 0, length);
        }
        catch (DecoderFallbackException)
        {
            return null;
        }
    }

    private static bool IsHex(char c) => char.IsAsciiHexDigit(c);
}
