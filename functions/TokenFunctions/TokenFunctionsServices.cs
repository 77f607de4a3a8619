using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using TokenService.Azure;
using TokenService.Hosting;

namespace TokenFunctions;

/// <summary>
/// The Functions app's service registration, in one place for Program.cs and the composition test: the Azure
/// adapters first (Table Storage, Key Vault, Graph, when configured), then the core with its embedded defaults.
/// The same registrations as the standalone host (functions/TokenService.Server/TokenServiceHost.cs), so both
/// hosts run one implementation; only the triggers differ.
/// </summary>
public static class TokenFunctionsServices
{
    public static IServiceCollection AddTokenFunctions(this IServiceCollection services, IConfiguration configuration, IHostEnvironment environment)
    {
        services.AddTokenServiceAzureAdapters(configuration);
        services.AddTokenService(configuration, environment);
        return services;
    }
}
