using System.Diagnostics;
using TokenService.Tests.Functions;
using TokenService.Tests.Infrastructure;

namespace TokenService.Tests.Startup;

/// <summary>
/// The Functions worker validates its settings before it opens its channel to the Functions host: started as the
/// host starts it (the built TokenFunctions.dll) with a bad setting, it exits 1 with one line per bad setting and no
/// stack trace, which the host logs.
/// </summary>
[Collection(FunctionsAppOutputCollection.Name)]
public sealed class FunctionsStartupErrorTests(FunctionsAppOutput output)
{
    [Fact]
    public async Task The_worker_exits_1_naming_every_bad_setting_without_a_stack_trace()
    {
        var start = new ProcessStartInfo("dotnet", [Path.Combine(output.Path, "TokenFunctions.dll")]) { WorkingDirectory = output.Path };
        start.Environment["AZURE_FUNCTIONS_ENVIRONMENT"] = "Development";
        start.Environment["TokenService__Issuer"] = "not-a-url";
        start.Environment["TokenService__MaxSessionsPerUser"] = "0";
        start.Environment["Keys__Algorithm"] = "HS256";
        start.Environment["Keys__DevelopmentKeyPath"] = Path.Combine(Path.GetTempPath(), "ts-worker-" + Guid.NewGuid().ToString("N"), "keys.json");
        var (exit, text) = await BuiltHosts.RunToExitAsync(start);
        Assert.Equal(1, exit);
        Assert.Contains("TokenService:Issuer", text, StringComparison.Ordinal);
        Assert.Contains("TokenService:MaxSessionsPerUser", text, StringComparison.Ordinal);
        Assert.Contains("Keys:Algorithm", text, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_worker_refuses_an_unresolved_key_vault_reference_and_production_without_store_or_client()
    {
        var start = new ProcessStartInfo("dotnet", [Path.Combine(output.Path, "TokenFunctions.dll")]) { WorkingDirectory = output.Path };
        start.Environment["AZURE_FUNCTIONS_ENVIRONMENT"] = "Production";
        start.Environment["TokenService__Issuer"] = "https://tokens.example.edu";
        start.Environment["Events__WebhookSecret"] = "@Microsoft.KeyVault(VaultName=kv-tokens-prod;SecretName=webhook)";
        var (exit, text) = await BuiltHosts.RunToExitAsync(start);
        Assert.Equal(1, exit);
        Assert.Contains("Events:WebhookSecret (app setting Events__WebhookSecret) is a Key Vault reference that did not resolve", text, StringComparison.Ordinal);
        Assert.Contains("Storage:TableServiceUri (with the app's managed identity) or Storage:TableConnectionString is required outside Development", text, StringComparison.Ordinal);
        Assert.Contains("Clients needs at least one client outside Development", text, StringComparison.Ordinal);
        Assert.DoesNotContain("kv-tokens-prod", text, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", text, StringComparison.Ordinal);
    }
}
