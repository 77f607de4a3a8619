using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using TokenService.Tests.Infrastructure;

namespace TokenService.Tests.Startup;

/// <summary>
/// A bad configuration ends the standalone host's process cleanly: exit code 1, one line per bad setting naming its
/// key, every bad setting of one start reported together, and no stack trace (the process is the built host,
/// started as an operator starts it).
/// </summary>
public sealed class StartupErrorTests
{
    [Theory]
    [InlineData("TokenService__Issuer", "not-a-url", "TokenService:Issuer")]
    [InlineData("TokenService__AccessTokenLifetime", "-00:05:00", "TokenService:AccessTokenLifetime")]
    [InlineData("TokenService__AccessTokenLifetime", "fifteen minutes", "TokenService:AccessTokenLifetime")]
    [InlineData("TokenService__MaxSessionsPerUser", "0", "TokenService:MaxSessionsPerUser")]
    [InlineData("Keys__Algorithm", "HS256", "Keys:Algorithm")]
    [InlineData("Clients__0__Type", "superuser", "Clients")]
    public async Task A_bad_setting_exits_1_with_one_line_naming_the_key_and_no_stack_trace(string key, string value, string named)
    {
        var (exit, stderr) = await RunAsync("Development", new() { [key] = value, ["Clients__0__ClientId"] = key.StartsWith("Clients", StringComparison.Ordinal) ? "c" : null });
        Assert.Equal(1, exit);
        Assert.Contains(named, stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("Unhandled exception", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_content_root_that_does_not_exist_exits_1_without_a_stack_trace()
    {
        var (exit, output) = await RunAsync("Development", new() { ["ASPNETCORE_CONTENTROOT"] = "/nonexistent/token-service" });
        Assert.Equal(1, exit);
        Assert.Contains("The content root /nonexistent/token-service", output, StringComparison.Ordinal);
        Assert.Contains("does not exist (set by --contentRoot or ASPNETCORE_CONTENTROOT", output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Every_bad_setting_of_one_start_is_reported_at_once()
    {
        var (exit, stderr) = await RunAsync("Development", new()
        {
            ["TokenService__Issuer"] = "not-a-url",
            ["TokenService__MaxSessionsPerUser"] = "0",
            ["Keys__Algorithm"] = "HS256",
        });
        Assert.Equal(1, exit);
        Assert.Contains("TokenService:Issuer", stderr, StringComparison.Ordinal);
        Assert.Contains("TokenService:MaxSessionsPerUser", stderr, StringComparison.Ordinal);
        Assert.Contains("Keys:Algorithm", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Production_without_key_vault_and_idp_names_what_is_missing_once()
    {
        var (exit, stderr) = await RunAsync("Production", new() { ["TokenService__Issuer"] = "https://tokens.example.edu" });
        Assert.Equal(1, exit);
        Assert.Contains("Keys:KeyVaultUri", stderr, StringComparison.Ordinal);
        Assert.Contains("Idp:", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", stderr, StringComparison.Ordinal);
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.Equal(lines.Length, lines.Distinct(StringComparer.Ordinal).Count());
    }

    [Theory]
    [InlineData("Events__WebhookSecret", "Events:WebhookSecret")]
    [InlineData("Dpop__NonceSecret", "Dpop:NonceSecret")]
    [InlineData("Clients__0__Secret", "Clients:0:Secret")]
    [InlineData("Telemetry__AnyOtherSetting", "Telemetry:AnyOtherSetting")]
    public async Task An_unresolved_key_vault_reference_exits_1_naming_the_setting_and_not_its_value(string key, string named)
    {
        // What App Service passes when it cannot resolve the reference: long enough for every length check.
        var (exit, stderr) = await RunAsync("Development", new()
        {
            ["Clients__0__ClientId"] = "c",
            ["Clients__0__Type"] = "confidential",
            ["Clients__0__Secret"] = "a-long-enough-secret",
            [key] = "@Microsoft.KeyVault(SecretUri=https://kv-tokens-prod.vault.azure.net/secrets/the-secret/)",
        });
        Assert.Equal(1, exit);
        Assert.Contains($"{named} (app setting {key}) is a Key Vault reference that did not resolve", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("kv-tokens-prod", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Production_without_a_session_store_or_a_client_exits_1_naming_both()
    {
        var (exit, stderr) = await RunAsync("Production", new() { ["TokenService__Issuer"] = "https://tokens.example.edu" });
        Assert.Equal(1, exit);
        Assert.Contains("Storage:TableServiceUri (with the app's managed identity) or Storage:TableConnectionString is required outside Development", stderr, StringComparison.Ordinal);
        Assert.Contains("Clients needs at least one client outside Development", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Production_without_an_issuer_exits_1_saying_the_issuer_is_required()
    {
        // Another port than discovery's default, and no issuer: outside Development there is no default to fall back on.
        var (exit, stderr) = await RunAsync("Production", [], urls: "http://127.0.0.1:0");
        Assert.Equal(1, exit);
        Assert.Contains("TokenService:Issuer is required outside Development (environment 'Production')", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_port_in_use_exits_1_with_one_line_naming_the_address_and_how_to_choose_another()
    {
        using var occupied = new TcpListener(IPAddress.Loopback, 0);
        occupied.Start();
        var address = $"http://127.0.0.1:{((IPEndPoint)occupied.LocalEndpoint).Port}";
        var (exit, stderr, stdout) = await BuiltHosts.RunToExitWithStreamsAsync(Start("Development", [], address));
        Assert.Equal(1, exit);
        var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        Assert.Contains(address, line, StringComparison.Ordinal);
        Assert.Contains("--urls", line, StringComparison.Ordinal);
        Assert.Contains("TokenService__Issuer", line, StringComparison.Ordinal);
        Assert.DoesNotContain("Unhandled exception", stderr + stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("BackgroundService failed", stderr + stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Started_from_another_folder_the_content_root_is_the_apps_own_folder()
    {
        // README: dotnet functions/TokenService.Server/bin/…/TokenService.Server.dll from the repository root; the
        // host must still read its own appsettings.json (its log levels keep request lines out of the log).
        var start = Start("Development", [], "http://127.0.0.1:0");
        start.WorkingDirectory = Directory.CreateTempSubdirectory("ts-cwd-").FullName;
        var (line, output) = await BuiltHosts.RunUntilLineAsync(start, l => l.Contains("Content root path:", StringComparison.Ordinal));
        Assert.True(line is not null, output);
        var contentRoot = line!.Split("Content root path:", 2)[1].Trim();
        Assert.Equal(Path.TrimEndingDirectorySeparator(Path.GetDirectoryName(BuiltHosts.ServerDll)!), Path.TrimEndingDirectorySeparator(contentRoot));
    }

    private static Task<(int Exit, string Output)> RunAsync(string environment, Dictionary<string, string?> variables, string urls = "http://127.0.0.1:0") =>
        BuiltHosts.RunToExitAsync(Start(environment, variables, urls));

    private static ProcessStartInfo Start(string environment, Dictionary<string, string?> variables, string urls)
    {
        Assert.True(File.Exists(BuiltHosts.ServerDll), BuiltHosts.ServerDll + " is not built");
        var start = new ProcessStartInfo("dotnet", [BuiltHosts.ServerDll, "--urls", urls]) { WorkingDirectory = Path.GetTempPath() };
        start.Environment["ASPNETCORE_ENVIRONMENT"] = environment;
        start.Environment["DOTNET_ENVIRONMENT"] = environment;
        start.Environment["Keys__DevelopmentKeyPath"] = Path.Combine(Path.GetTempPath(), "ts-startup-" + Guid.NewGuid().ToString("N"), "keys.json");
        foreach (var (key, value) in variables)
        {
            if (value is not null)
            {
                start.Environment[key] = value;
            }
        }

        return start;
    }
}
