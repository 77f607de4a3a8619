using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using TokenService.Dpop;
using TokenService.Tests.Infrastructure;

namespace TokenService.Tests.Dpop;

/// <summary>The <c>Dpop</c> settings are checked at start-up, on both hosts, each error naming its key.</summary>
public sealed class DpopOptionsTests
{
    private sealed class Environment(string name) : IHostEnvironment
    {
        public string EnvironmentName { get; set; } = name;
        public string ApplicationName { get; set; } = "tests";
        public string ContentRootPath { get; set; } = Path.GetTempPath();
        public Microsoft.Extensions.FileProviders.IFileProvider ContentRootFileProvider { get; set; } = null!;
    }

    private static ValidateOptionsResult Validate(DpopOptions options, string environment = "Production") =>
        new DpopOptionsValidator(new Environment(environment)).Validate(null, options);

    [Fact]
    public void The_defaults_are_valid_everywhere() => Assert.True(Validate(new DpopOptions()).Succeeded);

    [Theory]
    [InlineData("00:00:00", "Dpop:ProofLifetime")]
    [InlineData("01:00:00", "Dpop:ProofLifetime")]
    public void A_proof_lifetime_outside_seconds_to_minutes_is_refused(string lifetime, string key) =>
        Assert.Contains(key, Validate(new DpopOptions { ProofLifetime = TimeSpan.Parse(lifetime, System.Globalization.CultureInfo.InvariantCulture) }).FailureMessage, StringComparison.Ordinal);

    [Fact]
    public void Skew_nonce_lifetime_and_a_short_secret_are_checked()
    {
        var result = Validate(new DpopOptions { ClockSkew = TimeSpan.FromMinutes(10), NonceLifetime = TimeSpan.FromSeconds(1), NonceSecret = "short" });
        Assert.Contains("Dpop:ClockSkew", result.FailureMessage, StringComparison.Ordinal);
        Assert.Contains("Dpop:NonceLifetime", result.FailureMessage, StringComparison.Ordinal);
        Assert.Contains("Dpop:NonceSecret", result.FailureMessage, StringComparison.Ordinal);
    }

    [Fact]
    public void Required_nonces_need_a_shared_secret_outside_development()
    {
        Assert.Contains("Dpop:NonceSecret", Validate(new DpopOptions { RequireNonce = true }).FailureMessage, StringComparison.Ordinal);
        Assert.True(Validate(new DpopOptions { RequireNonce = true }, "Development").Succeeded);
        Assert.True(Validate(new DpopOptions { RequireNonce = true, NonceSecret = new string('s', 32) }).Succeeded);
    }

    [Theory]
    [InlineData(HostKind.Standalone)]
    [InlineData(HostKind.Functions)]
    public async Task A_host_with_bad_dpop_settings_does_not_start(HostKind kind)
    {
        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => TokenServiceTestHost.StartAsync(kind, new Dictionary<string, string?>
        {
            ["Dpop:RequireNonce"] = "true",
            ["Dpop:ProofLifetime"] = "00:00:00",
        }));
        Assert.Contains("Dpop:ProofLifetime", error.Message, StringComparison.Ordinal);
        Assert.Contains("Dpop:NonceSecret", error.Message, StringComparison.Ordinal);
    }
}
