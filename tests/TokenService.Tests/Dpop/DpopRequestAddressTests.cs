using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using TokenService.Configuration;
using TokenService.Dpop;
using TokenService.Endpoints;
using TokenService.Tests.Infrastructure;
using Microsoft.Extensions.Time.Testing;

namespace TokenService.Tests.Dpop;

/// <summary>
/// The URI a proof names (htu, RFC 9449 §4.3 item 9): the configured issuer plus the path everywhere; in Development
/// also the address the request came to, so that the development SPA on localhost can call the development host whose
/// issuer is 127.0.0.1 (the refresh cookie is SameSite=Strict, so the SPA must use the same site as its page).
/// </summary>
public sealed class DpopRequestAddressTests
{
    private const string Issuer = "http://127.0.0.1:7071";
    private readonly FakeTimeProvider _time = new(DateTimeOffset.UtcNow);
    private readonly DpopKey _key = DpopKey.Es256();

    private DpopRequestReader Reader(string environment)
    {
        var options = Options.Create(new DpopOptions());
        var validator = new DpopProofValidator(new InMemoryDpopReplayCache(_time), new HmacDpopNonceService(options, _time), options, _time, NullLogger<DpopProofValidator>.Instance);
        return new DpopRequestReader(validator, new HmacDpopNonceService(options, _time), options,
            Options.Create(new TokenServiceOptions { Issuer = Issuer }), new FixedEnvironment(environment));
    }

    private HttpContext Request(string proof)
    {
        var context = new DefaultHttpContext();
        context.Request.Method = "POST";
        context.Request.Scheme = "http";
        context.Request.Host = new HostString("localhost", 7071);
        context.Request.Path = "/oauth2/token";
        context.Request.Headers["DPoP"] = proof;
        return context;
    }

    [Theory]
    [InlineData("Development")]
    [InlineData("Production")]
    public async Task A_proof_naming_the_issuer_is_accepted_in_every_environment(string environment)
    {
        var result = await Reader(environment).ValidateAsync(Request(_key.Proof("POST", Issuer + "/oauth2/token", _time.GetUtcNow())));
        Assert.True(result.IsValid, result.Description);
        Assert.Equal(_key.Thumbprint, result.Thumbprint);
    }

    [Fact]
    public async Task In_development_a_proof_may_name_the_address_the_request_came_to()
    {
        var result = await Reader("Development").ValidateAsync(Request(_key.Proof("POST", "http://localhost:7071/oauth2/token", _time.GetUtcNow())));
        Assert.True(result.IsValid, result.Description);
    }

    [Theory]
    [InlineData("Production", "http://localhost:7071/oauth2/token")]
    [InlineData("Testing", "http://localhost:7071/oauth2/token")]
    [InlineData("Development", "http://localhost:7071/oauth2/revoke")]
    [InlineData("Development", "http://evil.example/oauth2/token")]
    public async Task Otherwise_a_proof_for_another_uri_is_refused(string environment, string htu)
    {
        var result = await Reader(environment).ValidateAsync(Request(_key.Proof("POST", htu, _time.GetUtcNow())));
        Assert.False(result.IsValid);
        Assert.Equal("invalid_dpop_proof", result.ErrorCode);
    }

    private sealed class FixedEnvironment(string name) : IHostEnvironment
    {
        public string EnvironmentName { get; set; } = name;
        public string ApplicationName { get; set; } = "tests";
        public string ContentRootPath { get; set; } = AppContext.BaseDirectory;
        public Microsoft.Extensions.FileProviders.IFileProvider ContentRootFileProvider { get; set; } = new Microsoft.Extensions.FileProviders.NullFileProvider();
    }
}
