using TokenService.Dpop;

namespace TokenService.Tests.Dpop;

/// <summary>RFC 3986 §6.2.2/§6.2.3 normalisation of <c>htu</c> (RFC 9449 §4.3).</summary>
public sealed class HtuNormalizerTests
{
    [Theory]
    [InlineData("https://tokens.example/oauth2/token", "https://tokens.example/oauth2/token")]
    [InlineData("HTTPS://TOKENS.EXAMPLE/oauth2/token", "https://tokens.example/oauth2/token")]
    [InlineData("https://tokens.example:443/oauth2/token", "https://tokens.example/oauth2/token")]
    [InlineData("http://tokens.example:80/x", "http://tokens.example/x")]
    [InlineData("https://tokens.example:/x", "https://tokens.example/x")]
    [InlineData("https://tokens.example:8443/x", "https://tokens.example:8443/x")]
    [InlineData("https://tokens.example", "https://tokens.example/")]
    [InlineData("https://tokens.example/a/./b/../c", "https://tokens.example/a/c")]
    [InlineData("https://tokens.example/a/%2e%2E/c", "https://tokens.example/c")]
    [InlineData("https://tokens.example/%7euser/%2fx%2F", "https://tokens.example/~user/%2Fx%2F")]
    [InlineData("https://tokens.example/p?q=1#f", "https://tokens.example/p")]
    [InlineData("https://[::1]:8443/p", "https://[::1]:8443/p")]
    [InlineData("https://[::1]:443/p", "https://[::1]/p")]
    public void Equivalent_uris_normalise_alike(string uri, string expected) => Assert.Equal(expected, HtuNormalizer.Normalize(uri));

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("/oauth2/token")]
    [InlineData("ftp://tokens.example/x")]
    [InlineData("https://user:pw@tokens.example/x")]
    [InlineData("https:///x")]
    [InlineData("https://tokens.example/%zz")]
    [InlineData("https://tokens.example/%4")]
    [InlineData("https://tokens.example/a b")]
    [InlineData("https://tokens.example:99999/x")]
    [InlineData("https://tokens.example/é")]
    public void Anything_but_an_absolute_http_uri_is_refused(string? uri) => Assert.Null(HtuNormalizer.Normalize(uri));

    [Fact]
    public void An_overlong_uri_is_refused_before_normalising() =>
        Assert.Null(HtuNormalizer.Normalize("https://tokens.example/" + new string('a', HtuNormalizer.MaxLength)));

    [Theory]
    [InlineData("https://tokens.example/oauth2/token", "https://tokens.example/oauth2/Token")]
    [InlineData("https://tokens.example/oauth2/token", "https://tokens.example/oauth2/token/")]
    [InlineData("https://tokens.example/oauth2/token", "https://tokens.example.evil/oauth2/token")]
    public void Different_uris_stay_different(string a, string b) => Assert.False(HtuNormalizer.AreEquivalent(a, b));
}
