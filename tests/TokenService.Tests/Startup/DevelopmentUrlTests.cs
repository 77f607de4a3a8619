using System.Text.Json;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.FileProviders;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using TokenService.Hosting;
using TokenService.Tests.Infrastructure;
using TokenService.Server;
using TokenService.Tests.Tables;

namespace TokenService.Tests.Startup;

/// <summary>
/// The standalone host listens where discovery says it is: in Development with no URL configured anywhere it binds
/// the development issuer's address (http://127.0.0.1:7071), not ASP.NET Core's port 5000; any configured URL,
/// port or Kestrel endpoint wins; outside Development nothing changes. The launch profile that <c>dotnet run</c>
/// applies gives Development on the same address.
/// </summary>
public sealed class DevelopmentUrlTests
{
    private const string Documented = TokenServiceServiceCollectionExtensions.DevelopmentIssuer;

    [Fact]
    public void Development_without_any_url_binds_the_documented_address()
    {
        Assert.Equal("http://127.0.0.1:7071", Documented);
        Assert.Equal(Documented, TokenServiceHost.DefaultUrls(Config(), Env("Development")));
    }

    [Theory]
    [InlineData("urls", "http://127.0.0.1:9000")]            // --urls, ASPNETCORE_URLS, DOTNET_URLS
    [InlineData("http_ports", "8080")]                        // ASPNETCORE_HTTP_PORTS (set in the .NET container images)
    [InlineData("https_ports", "8443")]                       // ASPNETCORE_HTTPS_PORTS
    [InlineData("Kestrel:Endpoints:Http:Url", "http://127.0.0.1:9001")]
    public void A_configured_url_port_or_endpoint_wins(string key, string value)
    {
        Assert.Null(TokenServiceHost.DefaultUrls(Config((key, value)), Env("Development")));
    }

    [Theory]
    [InlineData("Production")]
    [InlineData("Staging")]
    [InlineData("Testing")]
    public void Outside_development_the_aspnetcore_defaults_stay(string environment)
    {
        Assert.Null(TokenServiceHost.DefaultUrls(Config(), Env(environment)));
    }

    [Theory]
    [InlineData("http://127.0.0.1:8080", "http://127.0.0.1:8080")]
    [InlineData("http://localhost:8081/", "http://localhost:8081")]
    [InlineData("http://[::1]:8082", "http://[::1]:8082")]
    [InlineData("https://127.0.0.1:8443", Documented)]      // https needs a certificate: not bound by default
    [InlineData("https://tokens.example.edu", Documented)]  // a public name (a proxy in front): the local default
    [InlineData("http://192.0.2.10:8080", Documented)]
    public void A_configured_loopback_http_issuer_is_bound_instead(string issuer, string expected)
    {
        Assert.Equal(expected, TokenServiceHost.DefaultUrls(Config(("TokenService:Issuer", issuer)), Env("Development")));
    }

    [Fact]
    public async Task The_built_host_in_development_without_urls_is_set_to_the_documented_address()
    {
        var keyDir = Path.Combine(Path.GetTempPath(), "ts-url-" + Guid.NewGuid().ToString("N"));
        var app = TokenServiceHost.Build(["--environment", "Development"], builder => builder.Configuration.AddInMemoryCollection(
            new Dictionary<string, string?> { ["Keys:DevelopmentKeyPath"] = Path.Combine(keyDir, "k.json") }));
        try
        {
            Assert.Equal(Documented, app.Configuration[WebHostDefaults.ServerUrlsKey]);
        }
        finally
        {
            await app.DisposeAsync();
        }
    }

    [Fact]
    public async Task The_built_host_keeps_given_urls()
    {
        var keyDir = Path.Combine(Path.GetTempPath(), "ts-url-" + Guid.NewGuid().ToString("N"));
        var app = TokenServiceHost.Build(["--environment", "Development", "--urls", "http://127.0.0.1:0"], builder => builder.Configuration.AddInMemoryCollection(
            new Dictionary<string, string?> { ["Keys:DevelopmentKeyPath"] = Path.Combine(keyDir, "k.json") }));
        try
        {
            Assert.Equal("http://127.0.0.1:0", app.Configuration[WebHostDefaults.ServerUrlsKey]);
        }
        finally
        {
            await app.DisposeAsync();
        }
    }

    [Fact]
    public async Task Development_on_another_port_without_an_issuer_warns_with_the_exact_setting_to_add()
    {
        var (warnings, urls) = await StartDevelopmentAsync([]);
        var warning = Assert.Single(warnings);
        Assert.Equal(LogLevel.Warning, warning.Level);
        var bound = Assert.Single(urls);
        Assert.Contains($"TokenService__Issuer={bound}", warning.Message, StringComparison.Ordinal);
        Assert.Contains(Documented, warning.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Development_with_a_configured_issuer_does_not_warn()
    {
        var (warnings, _) = await StartDevelopmentAsync(new() { ["TokenService:Issuer"] = "https://tokens.example.edu" });
        Assert.Empty(warnings);
    }

    private static async Task<(IReadOnlyList<CapturedLog> Warnings, IReadOnlyList<string> Urls)> StartDevelopmentAsync(Dictionary<string, string?> settings)
    {
        var keyDir = Path.Combine(Path.GetTempPath(), "ts-url-" + Guid.NewGuid().ToString("N"));
        settings["Keys:DevelopmentKeyPath"] = Path.Combine(keyDir, "k.json");
        var capture = new CapturingLoggerProvider();
        var app = TokenServiceHost.Build(["--environment", "Development", "--urls", "http://127.0.0.1:0"], builder =>
        {
            builder.Configuration.AddInMemoryCollection(settings);
            capture.AddTo(builder.Services);
        });
        try
        {
            await app.StartAsync();
            return (capture.Entries.Where(e => e.Id.Id == 1401).ToList(), app.Urls.ToList());
        }
        finally
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }

    [Fact]
    public void The_launch_profile_gives_development_on_the_documented_address()
    {
        var path = Path.Combine(AzuriteFixture.FindRepositoryRoot(), "functions", "TokenService.Server", "Properties", "launchSettings.json");
        using var document = JsonDocument.Parse(File.ReadAllText(path));
        var profiles = document.RootElement.GetProperty("profiles").EnumerateObject().ToList();
        var project = Assert.Single(profiles, p => p.Value.GetProperty("commandName").GetString() == "Project");
        Assert.Equal(Documented, project.Value.GetProperty("applicationUrl").GetString());
        Assert.Equal("Development", project.Value.GetProperty("environmentVariables").GetProperty("ASPNETCORE_ENVIRONMENT").GetString());
    }

    private static IConfiguration Config(params (string Key, string Value)[] values) =>
        new ConfigurationBuilder().AddInMemoryCollection(values.Select(v => new KeyValuePair<string, string?>(v.Key, v.Value))).Build();

    private static IHostEnvironment Env(string name) => new TestEnvironment { EnvironmentName = name };

    private sealed class TestEnvironment : IHostEnvironment
    {
        public required string EnvironmentName { get; set; }
        public string ApplicationName { get; set; } = "TokenService.Server";
        public string ContentRootPath { get; set; } = Path.GetTempPath();
        public IFileProvider ContentRootFileProvider { get; set; } = new NullFileProvider();
    }
}
