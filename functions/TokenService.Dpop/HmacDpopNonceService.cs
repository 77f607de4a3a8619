using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;

namespace TokenService.Dpop;

/// <summary>
/// Stateless nonces: base64url of the issue time (Unix seconds, 8 bytes) and a 128-bit HMAC-SHA256 tag over it, so any
/// instance that shares <see cref="DpopOptions.NonceSecret"/> accepts a nonce another one issued, with no shared state.
/// The MAC key rotates: each window of <see cref="DpopOptions.NonceLifetime"/> has its own key derived from the secret
/// (HMAC of the window number), so a leaked window key forges nonces of that window only. RFC 9449 §8 leaves the nonce
/// format to the server ("opaque to the client") and asks only that nonces be unpredictable.
/// </summary>
public sealed class HmacDpopNonceService : IDpopNonceService
{
    private const int TimeBytes = 8;
    private const int TagBytes = 16;
    private const int NonceLength = 32; // base64url of 24 bytes, no padding

    private readonly byte[] _secret;
    private readonly TimeProvider _time;
    private readonly long _lifetimeSeconds;
    private readonly long _skewSeconds;

    public HmacDpopNonceService(IOptions<DpopOptions> options, TimeProvider time)
    {
        var o = options.Value;
        _secret = string.IsNullOrEmpty(o.NonceSecret) ? RandomNumberGenerator.GetBytes(32) : Encoding.UTF8.GetBytes(o.NonceSecret);
        _time = time;
        _lifetimeSeconds = Math.Max(1, (long)o.NonceLifetime.TotalSeconds);
        _skewSeconds = (long)o.ClockSkew.TotalSeconds;
    }

    public string Issue()
    {
        Span<byte> nonce = stackalloc byte[TimeBytes + TagBytes];
        BinaryPrimitives.WriteInt64BigEndian(nonce, _time.GetUtcNow().ToUnixTimeSeconds());
        Tag(nonce[..TimeBytes], nonce[TimeBytes..]);
        return System.Buffers.Text.Base64Url.EncodeToString(nonce);
    }

    public bool IsValid(string? nonce)
    {
        if (nonce is not { Length: NonceLength })
        {
            return false;
        }

        Span<byte> bytes = stackalloc byte[TimeBytes + TagBytes];
        // DecodeFromChars, not TryDecodeFromChars: the latter throws FormatException on invalid characters.
        if (System.Buffers.Text.Base64Url.DecodeFromChars(nonce, bytes, out _, out var written) != System.Buffers.OperationStatus.Done || written != bytes.Length)
        {
            return false;
        }

        // Stale after the lifetime; a nonce from the future (another instance's clock) only within the skew.
        var issued = BinaryPrimitives.ReadInt64BigEndian(bytes);
        var age = _time.GetUtcNow().ToUnixTimeSeconds() - issued;
        if (age > _lifetimeSeconds || age < -_skewSeconds)
        {
            return false;
        }

        Span<byte> expected = stackalloc byte[TagBytes];
        Tag(bytes[..TimeBytes], expected);
        return CryptographicOperations.FixedTimeEquals(expected, bytes[TimeBytes..]);
    }

    private void Tag(ReadOnlySpan<byte> issued, Span<byte> tag)
    {
        // The window key: HMAC(secret, "DPoP-Nonce" || window).
        Span<byte> label = stackalloc byte[10 + 8];
        "DPoP-Nonce"u8.CopyTo(label);
        BinaryPrimitives.WriteInt64BigEndian(label[10..], BinaryPrimitives.ReadInt64BigEndian(issued) / _lifetimeSeconds);
        Span<byte> windowKey = stackalloc byte[32];
        HMACSHA256.HashData(_secret, label, windowKey);

        Span<byte> mac = stackalloc byte[32];
        HMACSHA256.HashData(windowKey, issued, mac);
        mac[..TagBytes].CopyTo(tag);
    }
}
