using System.Reflection;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using TokenFunctions;
using TokenService.Tests.Infrastructure;

namespace TokenService.Tests.Functions;

/// <summary>
/// The worker's service provider, built as Program.cs builds it, creates every function class the way the worker
/// activates them (ActivatorUtilities per invocation): a missing registration fails here, not on the first request
/// in Azure. Also the settings of local.settings.sample.json pass start-up validation.
/// </summary>
public sealed class FunctionsCompositionTests
{
    public static TheoryData<string> FunctionClasses()
    {
        var data = new TheoryData<string>();
        foreach (var type in FunctionTypes())
        {
            data.Add(type.FullName!);
        }

        return data;
    }

    [Fact]
    public void The_app_declares_http_timer_and_event_grid_functions()
    {
        var names = FunctionTypes().SelectMany(t => t.GetMethods()).Select(m => m.GetCustomAttribute<FunctionAttribute>()?.Name).OfType<string>().ToList();
        Assert.Contains("Token", names);
        Assert.Contains("IdpEvents", names);
        Assert.Contains("KeyRotationCheck", names);
        Assert.Contains("GraphSubscriptionRenewal", names);
        Assert.Equal(names.Count, names.Distinct(StringComparer.OrdinalIgnoreCase).Count());
    }

    [Theory]
    [MemberData(nameof(FunctionClasses))]
    public async Task Every_function_class_resolves_from_the_worker_service_provider(string typeName)
    {
        await using var host = await TokenServiceTestHost.StartFunctionsAsync();
        var type = typeof(TokenFunctionsServices).Assembly.GetType(typeName)!;
        await using var scope = host.Services.CreateAsyncScope();
        var instance = ActivatorUtilities.CreateInstance(scope.ServiceProvider, type);
        Assert.IsType(type, instance);
    }

    [Fact]
    public async Task The_sample_local_settings_give_a_valid_development_app()
    {
        var settings = LocalSettings.ReadSample();
        var keyDir = Path.Combine(Path.GetTempPath(), "ts-sample-" + Guid.NewGuid().ToString("N"));
        settings["Keys__DevelopmentKeyPath"] = Path.Combine(keyDir, "signing-keys.json");
        // Table Storage on Azurite is the sample's choice; the composition is checked without a running Azurite.
        var environment = settings["AZURE_FUNCTIONS_ENVIRONMENT"]!;
        using var host = FunctionsAppFactory.Build(environment, LocalSettings.ToConfiguration(settings));
        await FunctionsAppFactory.ValidateStartupAsync(host);
        await using var scope = host.Services.CreateAsyncScope();
        foreach (var type in FunctionTypes())
        {
            Assert.NotNull(ActivatorUtilities.CreateInstance(scope.ServiceProvider, type));
        }

        // Development with the development IdP and clients, as the README walkthrough needs.
        Assert.Equal("Development", environment);
        Assert.NotNull(scope.ServiceProvider.GetService<TokenService.Endpoints.DevelopmentIdpEndpoint>());
        var clients = scope.ServiceProvider.GetRequiredService<IOptions<TokenService.Clients.ClientRegistryOptions>>().Value.Clients;
        Assert.Contains(clients, c => c.ClientId == "dev-confidential");
        Assert.IsNotType<TokenService.Sessions.InMemorySessionStore>(scope.ServiceProvider.GetRequiredService<TokenService.Sessions.ISessionStore>());
        if (Directory.Exists(keyDir))
        {
            Directory.Delete(keyDir, recursive: true);
        }
    }

    private static IEnumerable<Type> FunctionTypes() =>
        typeof(TokenFunctionsServices).Assembly.GetTypes()
            .Where(t => t.GetMethods().Any(m => m.GetCustomAttribute<FunctionAttribute>() is not null))
            .OrderBy(t => t.FullName, StringComparer.Ordinal);
}
