using System.Diagnostics;
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
        Assert.Contains("/nonexistent/token-service", output, StringComparison.Ordinal);
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

    private static Task<(int Exit, string Output)> RunAsync(string environment, Dictionary<string, string?> variables)
    {
        Assert.True(File.Exists(BuiltHosts.ServerDll), BuiltHosts.ServerDll + " is not built");
        var start = new ProcessStartInfo("dotnet", [BuiltHosts.ServerDll, "--urls", "http://127.0.0.1:0"]) { WorkingDirectory = Path.GetTempPath() };
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

        return BuiltHosts.RunToExitAsync(start);
    }
}
