using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using TokenService.Sessions;
using TokenService.Jwt;

namespace TokenService.Tokens;

/// <summary>
/// Opaque refresh tokens: base64url(sid[28] ‖ secret[32]). The 256-bit secret comes from a CSPRNG
/// (ASVS V7.2.3); the sid part lets refresh find its session with one point read. Only the SHA-256 of the
/// whole token is stored.
/// </summary>
public static class RefreshTokens
{
    private const int SecretBytes = 32;
    private const int TokenBytes = SessionIds.SessionIdBytes + SecretBytes;

    /// <summary>Encoded length: 60 bytes are exactly 80 base64url characters.</summary>
    public const int EncodedLength = 80;

    public static (string Token, string Hash) Create(string sessionId)
    {
        Span<byte> bytes = stackalloc byte[TokenBytes];
        if (!Base64UrlEncoding.TryDecodeStrict(sessionId, bytes, out var sidLength) || sidLength != SessionIds.SessionIdBytes)
        {
            throw new ArgumentException("Not a session id.", nameof(sessionId));
        }

        RandomNumberGenerator.Fill(bytes[SessionIds.SessionIdBytes..]);
        var token = Base64UrlEncoding.Encode(bytes);
        return (token, Hash(token));
    }

    /// <summary>The session id a well-formed token names, or null for anything else.</summary>
    public static string? TryGetSessionId(string? token)
    {
        if (token is null || token.Length != EncodedLength)
        {
            return null;
        }

        Span<byte> bytes = stackalloc byte[TokenBytes];
        return Base64UrlEncoding.TryDecodeStrict(token, bytes, out var written) && written == TokenBytes
            ? Base64UrlEncoding.Encode(bytes[..SessionIds.SessionIdBytes])
            : null;
    }

    public static string Hash(string token)
    {
        // The token's ASCII bytes on the stack for the tokens this service issues (80 characters); a longer string is
        // only ever one that fails the session lookup anyway, and is hashed from the heap.
        var ascii = token.Length <= 256 ? stackalloc byte[token.Length] : new byte[token.Length];
        Encoding.ASCII.GetBytes(token, ascii);
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(ascii, hash);
        return Base64UrlEncoding.Encode(hash);
    }

    /// <summary>
    /// Constant-time comparison of two stored hashes (base64url, so ASCII): the UTF-16 code units are compared as they
    /// are, with no copy.
    /// </summary>
    public static bool HashEquals(string? a, string? b) =>
        a is not null && b is not null && a.Length == b.Length
        && CryptographicOperations.FixedTimeEquals(MemoryMarshal.AsBytes(a.AsSpan()), MemoryMarshal.AsBytes(b.AsSpan()));
}
