using System.Security.Cryptography;
using System.Text;
using TokenService.Jwt;

namespace TokenService.Sessions;

/// <summary>
/// Session ids locate their user's partition without a lookup: sid = base64url(userKey[12] ‖ random[16]),
/// where userKey is the first 96 bits of SHA-256 over the user id. Stores partition by
/// <see cref="PartitionKeyForUser"/>, which equals the first 16 characters of every sid of that user.
/// </summary>
public static class SessionIds
{
    public const int UserKeyBytes = 12;
    public const int RandomBytes = 16;
    public const int SessionIdBytes = UserKeyBytes + RandomBytes;

    /// <summary>Length of the partition prefix of a sid: 12 bytes are exactly 16 base64url characters.</summary>
    public const int PartitionKeyLength = 16;

    public static string PartitionKeyForUser(string userId)
    {
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes("token-service/user\n" + userId), hash);
        return Base64UrlEncoding.Encode(hash[..UserKeyBytes]);
    }

    public static string NewSessionId(string userId)
    {
        Span<byte> bytes = stackalloc byte[SessionIdBytes];
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes("token-service/user\n" + userId), hash);
        hash[..UserKeyBytes].CopyTo(bytes);
        RandomNumberGenerator.Fill(bytes[UserKeyBytes..]);
        return Base64UrlEncoding.Encode(bytes);
    }

    /// <summary>True when <paramref name="sessionId"/> has the shape of one of our sids.</summary>
    public static bool IsWellFormed(string? sessionId) =>
        sessionId is { Length: 38 } && Base64UrlEncoding.IsStrict(sessionId);

    /// <summary>The partition of a well-formed sid; null otherwise.</summary>
    public static string? PartitionKeyOf(string? sessionId) =>
        IsWellFormed(sessionId) ? sessionId![..PartitionKeyLength] : null;
}
