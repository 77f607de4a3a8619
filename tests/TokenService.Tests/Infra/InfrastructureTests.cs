using System.Diagnostics;
using System.Text.Json;
using TokenService.Tests.Tables;

namespace TokenService.Tests.Infra;

/// <summary>
/// infra/main.bicep compiles with the real Bicep compiler and lints clean, and the compiled template holds the
/// resources, settings and least-privilege roles the deployment relies on.
/// </summary>
public sealed class InfrastructureTests
{
    private static readonly string Root = AzuriteFixture.FindRepositoryRoot();

    private static string BicepPath()
    {
        var packages = Environment.GetEnvironmentVariable("NUGET_PACKAGES") ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        var path = Path.Combine(packages, "azure.bicep.commandline.linux-x64", "0.49.2", "tools", "bicep");
        Assert.True(File.Exists(path), $"Bicep compiler not restored at {path}: run dotnet restore.");
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, File.GetUnixFileMode(path) | UnixFileMode.UserExecute);
        }

        return path;
    }

    private static (int ExitCode, string Output, string Errors) Bicep(params string[] args)
    {
        var start = new ProcessStartInfo(BicepPath()) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = Path.Combine(Root, "infra") };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        Assert.True(process.WaitForExit(120_000), "bicep did not finish in 2 minutes");
        return (process.ExitCode, output.Result, errors.Result);
    }

    [Fact]
    public void Main_bicep_compiles_and_lints_without_warnings()
    {
        var build = Bicep("build", "main.bicep", "--stdout");
        Assert.True(build.ExitCode == 0, build.Errors);
        Assert.DoesNotContain("Warning", build.Errors, StringComparison.Ordinal);
        var lint = Bicep("lint", "main.bicep");
        Assert.True(lint.ExitCode == 0 && string.IsNullOrWhiteSpace(lint.Errors + lint.Output), lint.Errors + lint.Output);
    }

    [Fact]
    public void The_template_deploys_the_function_app_storage_vault_roles_and_event_grid_azd_expects()
    {
        var build = Bicep("build", "main.bicep", "--stdout");
        Assert.Equal(0, build.ExitCode);
        var json = build.Output;
        using var template = JsonDocument.Parse(json);
        Assert.Equal("subscription", template.RootElement.GetProperty("$schema").GetString()!.Contains("subscriptionDeploymentTemplate", StringComparison.Ordinal) ? "subscription" : "other");

        // azd conventions.
        Assert.Contains("azd-env-name", json, StringComparison.Ordinal);
        Assert.Contains("azd-service-name", json, StringComparison.Ordinal);
        foreach (var output in new[] { "AZURE_FUNCTION_APP_NAME", "TOKEN_SERVICE_URL", "AZURE_KEY_VAULT_URI", "AZURE_STORAGE_TABLE_URI" })
        {
            Assert.True(template.RootElement.GetProperty("outputs").TryGetProperty(output, out _), output);
        }

        // Flex Consumption, dotnet-isolated 10.0, user-assigned identity.
        Assert.Contains("FlexConsumption", json, StringComparison.Ordinal);
        Assert.Contains("dotnet-isolated", json, StringComparison.Ordinal);
        Assert.Contains("UserAssigned", json, StringComparison.Ordinal);

        // Storage without shared keys; Key Vault Premium with RBAC, soft delete, purge protection.
        Assert.Contains("\"allowSharedKeyAccess\": false", json, StringComparison.Ordinal);
        Assert.Contains("\"enableRbacAuthorization\": true", json, StringComparison.Ordinal);
        Assert.Contains("\"enablePurgeProtection\": true", json, StringComparison.Ordinal);
        Assert.Contains("premium", json, StringComparison.Ordinal);

        // Least-privilege roles: Crypto User, Crypto Officer (rotation), Table Data Contributor, Blob Data Owner.
        foreach (var role in new[] { "12338af0-0e69-4776-bea7-57ae8d297424", "14b46e9e-c2b7-41b4-b07b-48a6ebf60603", "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3", "b7e6dc6d-f1e8-4753-8033-0f276bb0955b" })
        {
            Assert.Contains(role, json, StringComparison.Ordinal);
        }

        // Event Grid delivery to the function with dead-lettering; every contract setting the app needs.
        Assert.Contains("AzureFunction", json, StringComparison.Ordinal);
        Assert.Contains("deadLetterWithResourceIdentity", json, StringComparison.Ordinal);
        foreach (var setting in new[] { "TokenService__Issuer", "Idp__Issuer", "Idp__Audience", "Idp__JwksUri", "Idp__UserIdClaim", "Storage__TableServiceUri", "Keys__KeyVaultUri", "Keys__Algorithm" })
        {
            Assert.Contains(setting, json, StringComparison.Ordinal);
        }

        // No secrets in parameters or outputs.
        foreach (var section in new[] { "parameters", "outputs" })
        {
            foreach (var item in template.RootElement.GetProperty(section).EnumerateObject())
            {
                Assert.DoesNotContain("secret", item.Name, StringComparison.OrdinalIgnoreCase);
                Assert.NotEqual("securestring", item.Value.GetProperty("type").GetString(), StringComparer.OrdinalIgnoreCase);
            }
        }
    }

    [Fact]
    public void Azd_host_and_local_settings_files_match_the_contract()
    {
        var azure = File.ReadAllText(Path.Combine(Root, "azure.yaml"));
        Assert.Contains("project: ./functions/TokenFunctions", azure, StringComparison.Ordinal);
        Assert.Contains("host: function", azure, StringComparison.Ordinal);
        Assert.Contains("language: dotnet", azure, StringComparison.Ordinal);

        using var host = JsonDocument.Parse(File.ReadAllText(Path.Combine(Root, "host.json")));
        Assert.Equal(string.Empty, host.RootElement.GetProperty("extensions").GetProperty("http").GetProperty("routePrefix").GetString());

        using var settings = JsonDocument.Parse(File.ReadAllText(Path.Combine(Root, "local.settings.sample.json")));
        var values = settings.RootElement.GetProperty("Values");
        Assert.Equal("dotnet-isolated", values.GetProperty("FUNCTIONS_WORKER_RUNTIME").GetString());
        var contract = File.ReadAllText(Path.Combine(Root, "..", "shared", "CONTRACT.md"));
        foreach (var key in new[] { "TokenService__Issuer", "TokenService__AccessTokenLifetime", "TokenService__RefreshTokenLifetime", "TokenService__SessionIdleTimeout",
            "TokenService__SessionAbsoluteLifetime", "TokenService__MaxSessionsPerUser", "TokenService__RefreshTokenReuseLeeway",
            "Storage__TableConnectionString", "Keys__Algorithm", "Keys__RotationInterval", "Keys__PropagationTime",
            "Keys__RetentionTime", "Keys__CheckInterval", "Events__WebhookSecret" })
        {
            Assert.Contains(key, contract, StringComparison.Ordinal);
            Assert.True(values.TryGetProperty(key, out _), $"local.settings.sample.json lacks {key}");
        }

        // A local run uses the development IdP and clients: no Idp or Clients in the sample (README, Functions app).
        Assert.DoesNotContain(values.EnumerateObject(), p => p.Name.StartsWith("Idp__", StringComparison.Ordinal) || p.Name.StartsWith("Clients__", StringComparison.Ordinal));
        Assert.Equal("Development", values.GetProperty("AZURE_FUNCTIONS_ENVIRONMENT").GetString());
    }
}
