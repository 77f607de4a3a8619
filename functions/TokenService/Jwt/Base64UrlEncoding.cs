using System.Buffers.Text;

namespace TokenService.Jwt;

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

    /// <summary>True when <paramref name="text"/> is canonical unpadded base64url.</summary>
    public static bool IsStrict(ReadOnlySpan<char> text)
    {
        if (text.Length % 4 == 1)
        {
            return false;
        }

        foreach (var c in text)
        {
            if (!((uint)(c - 'A') <= 'Z' - 'A' || (uint)(c - 'a') <= 'z' - 'a' || (uint)(c - '0') <= 9 || c == '-' || c == '_'))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Decodes strict base64url; returns null for anything else (padding, whitespace, other alphabets).</summary>
    public static byte[]? DecodeStrict(ReadOnlySpan<char> text)
    {
        if (!IsStrict(text))
        {
            return null;
        }

        var buffer = new byte[Base64Url.GetMaxDecodedLength(text.Length)];
        if (!Base64Url.TryDecodeFromChars(text, buffer, out var written))
        {
            return null;
        }

        return written == buffer.Length ? buffer : buffer.AsSpan(0, written).ToArray();
    }

    /// <summary>Decodes strict base64url into <paramref name="destination"/>; false for non-strict input or too small a buffer.</summary>
    public static bool TryDecodeStrict(ReadOnlySpan<char> text, Span<byte> destination, out int written)
    {
        written = 0;
        return IsStrict(text) && Base64Url.TryDecodeFromChars(text, destination, out written);
    }

    public static int GetMaxDecodedLength(int encodedLength) => Base64Url.GetMaxDecodedLength(encodedLength);
}
