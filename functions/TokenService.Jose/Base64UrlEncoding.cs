using System.Buffers.Text;

namespace TokenService.Jose;

/// <summary>
/// Strict base64url (RFC 4648 §5) as JWS compact serialization requires (RFC 7515 §2, §7.1): no padding, no whitespace,
/// no characters outside the URL-safe alphabet. Encoding and decoding are <see cref="Base64Url"/>'s; what is ours is the
/// strictness check (<see cref="IsStrict"/>), because <see cref="Base64Url"/> and IdentityModel's Base64UrlEncoder both
/// accept padding and whitespace, and two encodings of one token must never both be accepted (refresh tokens, session
/// ids and JWS segments are compared and hashed as text).
/// </summary>
public static class Base64UrlEncoding
{
    public static string Encode(ReadOnlySpan<byte> data) => Base64Url.EncodeToString(data);

    /// <summary>True when <paramref name="text"/> is canonical unpadded base64url (URL-safe alphabet, no padding, zero spare bits).</summary>
    public static bool IsStrict(ReadOnlySpan<char> text)
    {
        if (text.Length % 4 == 1)
        {
            return false;
        }

        var last = 0;
        foreach (var c in text)
        {
            if ((uint)(c - 'A') <= 'Z' - 'A')
            {
                last = c - 'A';
            }
            else if ((uint)(c - 'a') <= 'z' - 'a')
            {
                last = c - 'a' + 26;
            }
            else if ((uint)(c - '0') <= 9)
            {
                last = c - '0' + 52;
            }
            else if (c is '-' or '_')
            {
                last = c == '-' ? 62 : 63;
            }
            else
            {
                return false;
            }
        }

        // RFC 4648 §3.5: the bits of the last character beyond the data must be zero, else "e30" and "e31" would be two
        // encodings of one value. 2 characters left over carry 1 byte (4 spare bits), 3 carry 2 bytes (2 spare bits).
        return (text.Length % 4) switch
        {
            2 => (last & 0x0F) == 0,
            3 => (last & 0x03) == 0,
            _ => true,
        };
    }

    /// <summary>
    /// True when <paramref name="compact"/> is three dot-separated segments, each strict base64url (RFC 7515 §7.1): what
    /// every JWS reader of the product checks before a parser that accepts padding and whitespace (IdentityModel's) sees
    /// it. Allocates nothing.
    /// </summary>
    public static bool IsStrictCompactJws(ReadOnlySpan<char> compact)
    {
        var first = compact.IndexOf('.');
        if (first < 0)
        {
            return false;
        }

        var rest = compact[(first + 1)..];
        var second = rest.IndexOf('.');
        return second >= 0 && IsStrict(compact[..first]) && IsStrict(rest[..second]) && IsStrict(rest[(second + 1)..]);
    }

    /// <summary>Decodes strict base64url; returns null for anything else (padding, whitespace, other alphabets).</summary>
    public static byte[]? DecodeStrict(ReadOnlySpan<char> text)
    {
        if (!IsStrict(text))
        {
            return null;
        }

        var buffer = new byte[Base64Url.GetMaxDecodedLength(text.Length)];
        if (!TryDecode(text, buffer, out var written))
        {
            return null;
        }

        return written == buffer.Length ? buffer : buffer.AsSpan(0, written).ToArray();
    }

    /// <summary>Decodes strict base64url into <paramref name="destination"/>; false for non-strict input or too small a buffer.</summary>
    public static bool TryDecodeStrict(ReadOnlySpan<char> text, Span<byte> destination, out int written)
    {
        written = 0;
        return IsStrict(text) && TryDecode(text, destination, out written);
    }

    // Base64Url.TryDecodeFromChars throws FormatException on invalid data, non-canonical final bits included ("e31"):
    // DecodeFromChars reports it as InvalidData instead, so a crafted token is refused, never a 500.
    private static bool TryDecode(ReadOnlySpan<char> text, Span<byte> destination, out int written) =>
        Base64Url.DecodeFromChars(text, destination, out var consumed, out written) == System.Buffers.OperationStatus.Done
        && consumed == text.Length;

    public static int GetMaxDecodedLength(int encodedLength) => Base64Url.GetMaxDecodedLength(encodedLength);
}
