using TokenService.Jwt;

namespace TokenService.Tests.Jose;

public sealed class Base64UrlEncodingTests
{
    [Theory]
    [InlineData("", true)]
    [InlineData("e30", true)] // {}
    [InlineData("e31", false)] // the same byte with a spare bit set (RFC 4648 §3.5)
    [InlineData("AA", true)]
    [InlineData("AB", false)]
    [InlineData("AP", false)]
    [InlineData("AQ", true)]
    [InlineData("AAA", true)]
    [InlineData("AAB", false)]
    [InlineData("AAE", true)]
    [InlineData("AAAA", true)]
    [InlineData("A", false)]
    [InlineData("AA==", false)]
    [InlineData("A+/A", false)]
    [InlineData("AA AA", false)]
    public void Only_canonical_unpadded_base64url_is_strict_and_decoding_never_throws(string text, bool strict)
    {
        Assert.Equal(strict, Base64UrlEncoding.IsStrict(text));
        var decoded = Base64UrlEncoding.DecodeStrict(text);
        Assert.Equal(strict, decoded is not null);
        Span<byte> buffer = stackalloc byte[8];
        Assert.Equal(strict, Base64UrlEncoding.TryDecodeStrict(text, buffer, out _));
        if (decoded is not null)
        {
            Assert.Equal(text, Base64UrlEncoding.Encode(decoded));
        }
    }
}
