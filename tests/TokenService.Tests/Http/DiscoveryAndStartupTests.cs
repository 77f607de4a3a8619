using System.Net;
using Microsoft.Extensions.Options;
using TokenService.Tests.Infrastructure;
using static TokenService.Tests.Infrastructure.TokenServiceTestHost;

namespace TokenService.Tests.Http;

public sealed class DiscoveryAndStartupTests(HostFixture fixture) : DiscoveryAndStartupTests<HostFixture>(fixture);

/// <summary>The same tests against the Functions app (its HTTP functions invoked in-process).</summary>
public sealed class DiscoveryAndStartupTestsOnFunctions(FunctionsHostFixture fixture) : DiscoveryAndStartupTests<FunctionsHostFixture>(fixture);

/// <summary>The same tests against the published app under a real Functions host (<see cref="RealFunctionsHostPool"/>).</summary>
[RealFunctionsHostTier]
[Collection(RealFunctionsHostCollection.Name)]
[NotOnRealHost(nameof(DiscoveryAndStartupTests<RealFunctionsHostFixture>.The_local_development_key_survives_a_restart), StandaloneOnly)]
[NotOnRealHost(nameof(DiscoveryAndStartupTests<RealFunctionsHostFixture>.Invalid_options_stop_start_up_with_a_message_naming_the_key), StandaloneOnly)]
[NotOnRealHost(nameof(DiscoveryAndStartupTests<RealFunctionsHostFixture>.The_host_refuses_to_start_outside_development_with_the_local_key), "start-up validation in another environment: the real host runs the app in Development, as func start does")]
[NotOnRealHost(nameof(DiscoveryAndStartupTests<RealFunctionsHostFixture>.An_http_spa_origin_outside_development_stops_start_up), "start-up validation outside Development: the real host runs the app in Development, as func start does")]
[NotOnRealHost(nameof(DiscoveryAndStartupTests<RealFunctionsHostFixture>.Http_spa_origins_on_localhost_and_loopback_addresses_are_allowed_outside_development), "about start-up outside Development: the real host runs the app in Development, as func start does")]
[NotOnRealHost(nameof(DiscoveryAndStartupTests<RealFunctionsHostFixture>.A_key_cap_below_what_the_schedule_publishes_or_above_100_stops_start_up), "expects the in-process OptionsValidationException: under a real host a bad setting ends the worker (StartupValidation, exit code 1)")]
[NotOnRealHost(nameof(DiscoveryAndStartupTests<RealFunctionsHostFixture>.A_resource_server_without_allowed_audiences_stops_start_up), "expects the in-process OptionsValidationException: under a real host a bad setting ends the worker (StartupValidation, exit code 1)")]
[NotOnRealHost(nameof(DiscoveryAndStartupTests<RealFunctionsHostFixture>.A_client_display_name_with_a_control_character_or_over_100_characters_stops_start_up), "expects the in-process OptionsValidationException: under a real host a bad setting ends the worker (StartupValidation, exit code 1)")]
[NotOnRealHost(nameof(DiscoveryAndStartupTests<RealFunctionsHostFixture>.A_shared_signals_jwks_uri_without_https_stops_start_up), "start-up validation outside Development: the real host runs the app in Development, as func start does")]
public sealed class DiscoveryAndStartupTestsOnRealHost(RealFunctionsHostFixture fixture) : DiscoveryAndStartupTests<RealFunctionsHostFixture>(fixture)
{
    private const string StandaloneOnly = "starts the standalone host in-process whatever the class's host: DiscoveryAndStartupTests runs it";
}

public abstract class DiscoveryAndStartupTests<TFixture>(TFixture fixture) : IClassFixture<TFixture>
    where TFixture : HostFixture
{
    private TokenServiceTestHost Host => fixture.Host;

    [Fact]
    public async Task Discovery_names_the_issuer_and_every_endpoint()
    {
        using var response = await Host.Client.GetAsync("/.well-known/openid-configuration");
        var json = await JsonAsync(response);
        Assert.Equal("https://tokens.test.example", json.GetProperty("issuer").GetString());
        Assert.Equal("https://tokens.test.example/.well-known/jwks.json", json.GetProperty("jwks_uri").GetString());
        Assert.Equal("https://tokens.test.example/oauth2/token", json.GetProperty("token_endpoint").GetString());
        Assert.Equal("https://tokens.test.example/oauth2/revoke", json.GetProperty("revocation_endpoint").GetString());
        Assert.Equal("https://tokens.test.example/oauth2/introspect", json.GetProperty("introspection_endpoint").GetString());
        var grants = json.GetProperty("grant_types_supported").EnumerateArray().Select(e => e.GetString()).ToList();
        Assert.Contains("refresh_token", grants);
        Assert.Contains("urn:ietf:params:oauth:grant-type:token-exchange", grants);
    }

    [Fact]
    public async Task Jwks_publishes_public_members_only_with_thumbprint_kids_and_is_cacheable()
    {
        using var response = await Host.Client.GetAsync("/.well-known/jwks.json");
        var body = await response.Content.ReadAsStringAsync();
        Assert.Contains("public", response.Headers.CacheControl?.ToString(), StringComparison.Ordinal);
        Assert.True(response.Headers.CacheControl?.MaxAge > TimeSpan.Zero);
        var keys = (await JsonAsync(response)).GetProperty("keys").EnumerateArray().ToList();
        Assert.NotEmpty(keys);
        foreach (var key in keys)
        {
            foreach (var secret in new[] { "d", "p", "q", "dp", "dq", "qi", "k" })
            {
                Assert.False(key.TryGetProperty(secret, out _), $"JWKS leaks '{secret}': {body}");
            }

            // RFC 7638 thumbprint as Microsoft.IdentityModel computes it from the published members.
            var jwk = new Microsoft.IdentityModel.Tokens.JsonWebKey(key.GetRawText());
            Assert.Equal(Microsoft.IdentityModel.Tokens.Base64UrlEncoder.Encode(jwk.ComputeJwkThumbprint()), key.GetProperty("kid").GetString());
        }
    }

    [Fact]
    public async Task Health_reports_store_and_keys()
    {
        using var response = await Host.Client.GetAsync("/healthz");
        var json = await JsonAsync(response);
        Assert.Equal("healthy", json.GetProperty("status").GetString());
        Assert.Equal("ok", json.GetProperty("checks").GetProperty("store").GetString());
        Assert.Equal("ok", json.GetProperty("checks").GetProperty("keys").GetString());
    }

    [Fact]
    public async Task The_local_development_key_survives_a_restart()
    {
        var keyPath = Path.Combine(Path.GetTempPath(), "restart-" + Guid.NewGuid().ToString("N"), "keys.json");
        var settings = new Dictionary<string, string?> { ["Keys:DevelopmentKeyPath"] = keyPath };
        string first, second;
        await using (var host = await TokenServiceTestHost.StartAsync(settings))
        {
            first = await host.Client.GetStringAsync("/.well-known/jwks.json");
        }

        await using (var host = await TokenServiceTestHost.StartAsync(settings))
        {
            second = await host.Client.GetStringAsync("/.well-known/jwks.json");
        }

        Assert.Equal(first, second);
        Directory.Delete(Path.GetDirectoryName(keyPath)!, true);
    }

    [Theory]
    [InlineData("Production")]
    [InlineData("Staging")]
    [InlineData("Testing")]
    public async Task The_host_refuses_to_start_outside_development_with_the_local_key(string environment)
    {
        // Only Development, or a test host that opted in in code (TokenServiceTestHost), may use the local key.
        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => StartInEnvironmentAsync(environment));
        Assert.Contains("Keys:KeyVaultUri", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("http://app.test")]
    [InlineData("http://192.168.1.20:5173")]
    [InlineData("http://localhost.evil.example")]
    public async Task An_http_spa_origin_outside_development_stops_start_up(string origin)
    {
        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => StartWithAsync(new() { ["Clients:0:AllowedOrigins:1"] = origin }));
        Assert.Contains("Clients:0:AllowedOrigins", error.Message, StringComparison.Ordinal);
        Assert.Contains(origin, error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Orders\nportal")]
    [InlineData("A name far too long for a column of the sessions page, which no user would read to its very end anyway, really")]
    public async Task A_client_display_name_with_a_control_character_or_over_100_characters_stops_start_up(string displayName)
    {
        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => StartWithAsync(new() { ["Clients:1:DisplayName"] = displayName }));
        Assert.Contains("Clients:1:DisplayName", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Http_spa_origins_on_localhost_and_loopback_addresses_are_allowed_outside_development()
    {
        // Browsers treat these as secure contexts (W3C Secure Contexts), so local front ends can talk to a test deployment.
        await using var host = await StartWithAsync(new()
        {
            ["Clients:0:AllowedOrigins:1"] = "http://localhost:5173",
            ["Clients:0:AllowedOrigins:2"] = "http://127.0.0.1:8080",
            ["Clients:0:AllowedOrigins:3"] = "http://[::1]:3000",
        });
        using var response = await host.Client.GetAsync("/healthz");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Theory]
    [InlineData("2", null)]
    [InlineData("101", null)]
    [InlineData("3", "15.00:00:00")] // retention of more than one rotation interval: the schedule alone publishes 4 keys
    public async Task A_key_cap_below_what_the_schedule_publishes_or_above_100_stops_start_up(string max, string? retention)
    {
        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => StartWithAsync(new()
        {
            ["Keys:MaxPublishedKeys"] = max,
            ["Keys:RotationInterval"] = retention is null ? null : "10.00:00:00",
            ["Keys:RetentionTime"] = retention,
        }));
        Assert.Contains("Keys:MaxPublishedKeys", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_resource_server_without_allowed_audiences_stops_start_up()
    {
        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => StartWithAsync(new()
        {
            ["Clients:5:ClientId"] = "any-api",
            ["Clients:5:Type"] = "resource_server",
            ["Clients:5:Secret"] = "any-api-secret-123",
        }));
        Assert.Contains("Clients:5:AllowedAudiences", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("http://transmitter.example/jwks.json")]
    [InlineData("http://127.0.0.1:8443/jwks.json")]
    [InlineData("ftp://transmitter.example/jwks.json")]
    public async Task A_shared_signals_jwks_uri_without_https_stops_start_up(string uri)
    {
        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => StartWithAsync(new()
        {
            ["Events:SsfIssuer"] = "https://transmitter.example",
            ["Events:SsfJwksUri"] = uri,
        }));
        Assert.Contains("Events:SsfJwksUri", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("TokenService:Issuer", "not a url", "TokenService:Issuer")]
    [InlineData("Clients:0:Type", "superuser", "Clients:0:Type")]
    [InlineData("Clients:1:Secret", "", "Clients:1:Secret")]
    [InlineData("Idp:JwksPath", "/no/such/file.json", "Idp:JwksPath")]
    [InlineData("Keys:Algorithm", "HS256", "Keys:Algorithm")]
    [InlineData("TokenService:MaxSessionsPerUser", "0", "MaxSessionsPerUser")]
    [InlineData("Clients:2:IdpAudience", " ", "Clients:2:IdpAudience")]
    public async Task Invalid_options_stop_start_up_with_a_message_naming_the_key(string key, string value, string expected)
    {
        var error = await Assert.ThrowsAsync<OptionsValidationException>(async () =>
        {
            await using var host = await TokenServiceTestHost.StartAsync(new Dictionary<string, string?> { [key] = value });
        });
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    private async Task<TokenServiceTestHost> StartWithAsync(Dictionary<string, string?> settings) =>
        await TokenServiceTestHost.StartAsync(Host.Kind, settings);

    private static async Task StartInEnvironmentAsync(string environment)
    {
        using var idp = new TestIdp();
        var keyDir = Path.Combine(Path.GetTempPath(), "ts-env-" + Guid.NewGuid().ToString("N"));
        var app = TokenService.Server.TokenServiceHost.Build(["--environment", environment, "--urls", "http://127.0.0.1:0"], builder =>
            Microsoft.Extensions.Configuration.MemoryConfigurationBuilderExtensions.AddInMemoryCollection(builder.Configuration, new Dictionary<string, string?>
            {
                ["TokenService:Issuer"] = "https://tokens.test.example",
                ["Idp:Issuer"] = TestIdp.Issuer,
                ["Idp:Audience"] = TestIdp.Audience,
                ["Idp:JwksPath"] = idp.JwksPath,
                ["Events:WebhookSecret"] = WebhookSecret,
                ["Keys:DevelopmentKeyPath"] = Path.Combine(keyDir, "signing-keys.json"),
            }));
        try
        {
            await app.StartAsync();
        }
        finally
        {
            await app.DisposeAsync();
            if (Directory.Exists(keyDir))
            {
                Directory.Delete(keyDir, recursive: true);
            }
        }
    }
}
