using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace TokenService.Http;

/// <summary>Path segments read from the request target as the client sent it, decoded exactly once.</summary>
public static class RequestPath
{
    /// <summary>
    /// The decoded segment at <paramref name="index"/> (0-based, after the leading slash) of the raw request target,
    /// or null when the host does not expose the raw target or the segment is missing.
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

        // RFC 3986 percent-decoding of one segment, once (UTF-8 octets to text).
        return Uri.UnescapeDataString(segment.ToString());
    }

    /// <summary>
    /// True when <paramref name="decoded"/>, a segment already decoded once, still holds a percent-encoded octet
    /// (<c>%</c> and two hex digits, RFC 3986 §2.1). Such a segment is ambiguous: the client may have encoded a
    /// <c>%</c> (<c>%252F</c> for the text <c>%2F</c>), or a proxy may have escaped the <c>%</c> of an escape it had
    /// left encoded (the Functions host forwards the <c>%2F</c> of a client's <c>a%2Fb</c> as <c>%252F</c>); the
    /// two cannot be told apart at the endpoint, so the id must not be taken from the path.
    /// </summary>
    public static bool HoldsPercentEncoding(string decoded)
    {
        for (var i = decoded.IndexOf('%'); i >= 0 && i + 2 < decoded.Length; i = decoded.IndexOf('%', i + 1))
        {
            if (char.IsAsciiHexDigit(decoded[i + 1]) && char.IsAsciiHexDigit(decoded[i + 2]))
            {
                return true;
            }
        }

        return false;
    }
}
