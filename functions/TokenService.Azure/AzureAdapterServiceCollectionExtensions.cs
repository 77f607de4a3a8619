using Azure.Core;
using Azure.Core.Pipeline;
using Azure.Identity;
using TokenService.Azure.Graph;
using TokenService.Azure.KeyVault;
using TokenService.Azure.KeyVault.Keys;
using TokenService.Keys;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TokenService.Azure.Tables;
using TokenService.Azure.Tables.Stores;
using TokenService.Configuration;
using TokenService.Dpop;
using TokenService.Events;
using TokenService.Idp;
using TokenService.Sessions;
using TokenService.Tokens;

namespace TokenService.Azure;

/// <summary>
/// Registers the Azure adapters that configuration asks for, before the core's in-memory defaults:
/// Table Storage stores when <c>Storage:TableConnectionString</c> or <c>Storage:TableServiceUri</c> is set,
/// Key Vault signing when <c>Keys:KeyVaultUri</c> or <c>Keys:Vaults</c> is set. Both hosts call this.
/// </summary>
public static class AzureAdapterServiceCollectionExtensions
{
    public static IServiceCollection AddTokenServiceAzureAdapters(this IServiceCollection services, IConfiguration configuration)
    {
        var storage = configuration.GetSection(StorageOptions.SectionName).Get<StorageOptions>() ?? new StorageOptions();
        if (storage.UsesTableStorage)
        {
            services.TryAddSingleton(sp => TableStorage.CreateClient(storage, () => Credential(sp)));
            services.AddSingleton<TableProvisioner>();
            services.AddSingleton<IStoreHealthCheck>(sp => sp.GetRequiredService<TableProvisioner>());
            services.AddSingleton<TableSessionStore>();
            services.AddSingleton<TableTokenMarkerStore>();
            services.AddSingleton<ISessionStore>(sp => sp.GetRequiredService<TableSessionStore>());
            services.AddSingleton<IAccessTokenDenyList>(sp => sp.GetRequiredService<TableTokenMarkerStore>());
            services.AddSingleton<IIdTokenReplayCache>(sp => sp.GetRequiredService<TableTokenMarkerStore>());
            services.AddSingleton<IProcessedEventStore>(sp => sp.GetRequiredService<TableTokenMarkerStore>());
            services.AddSingleton<IDpopReplayCache, TableDpopReplayCache>();
            services.AddSingleton<SharedSignals.ISsfStreamStore, TableSsfStreamStore>();
        }

        var keys = configuration.GetSection(KeysOptions.SectionName).Get<KeysOptions>() ?? new KeysOptions();
        if (keys.UsesKeyVault)
        {
            services.TryAddSingleton(sp => new KeyVaultClientFactory(uri =>
            {
                var clientOptions = new KeyClientOptions
                {
                    DisableChallengeResourceVerification = sp.GetRequiredService<IOptions<KeysOptions>>().Value.DisableChallengeResourceVerification,
                };
                if (Transport(sp) is { } transport)
                {
                    clientOptions.Transport = transport;
                }

                return new KeyClient(uri, Credential(sp), clientOptions);
            }));
            services.TryAddSingleton<ISigningKeyService>(KeyVaultSigning);
        }

        var events = configuration.GetSection(EventsOptions.SectionName).Get<EventsOptions>() ?? new EventsOptions();
        if (!string.IsNullOrWhiteSpace(events.GraphEndpoint))
        {
            services.TryAddSingleton<IGraphUserLookup>(sp => new GraphUserLookup(new Uri(events.GraphEndpoint), Credential(sp), GraphOptions(sp)));
            services.TryAddSingleton<IGraphSubscriptionClient>(sp => new GraphSubscriptionClient(new Uri(events.GraphEndpoint), Credential(sp), GraphOptions(sp)));
        }

        return services;
    }

    /// <summary>
    /// One vault (<c>Keys:KeyVaultUri</c>, or one entry of <c>Keys:Vaults</c>): its service alone, with the registered
    /// <see cref="KeyClient"/> when there is one (tests). Several: one service per vault behind
    /// <see cref="MultiVaultSigningKeyService"/>.
    /// </summary>
    private static ISigningKeyService KeyVaultSigning(IServiceProvider sp)
    {
        var options = sp.GetRequiredService<IOptions<KeysOptions>>().Value;
        var budget = sp.GetRequiredService<IOptions<TokenServiceOptions>>().Value.DependencyBudget;
        var time = sp.GetRequiredService<TimeProvider>();
        var factory = sp.GetRequiredService<KeyVaultClientFactory>();
        var logger = sp.GetRequiredService<ILogger<KeyVaultSigningKeyService>>();
        var vaults = options.EffectiveVaults;
        var metrics = sp.GetService<TokenService.Diagnostics.TokenServiceMetrics>();
        KeyVaultSigningKeyService Vault(int i, KeyClient? client = null) => new(
            client ?? factory.Create(new Uri(vaults[i].Uri!)),
            options,
            new KeyVaultPlacement(i, vaults.Count, vaults[i].SignsPerWindow ?? options.SignsPerWindow, budget),
            time,
            logger,
            sp.GetService<SigningKeyHealth>(),
            metrics);

        return vaults.Count == 1
            ? Vault(0, sp.GetService<KeyClient>())
            : new MultiVaultSigningKeyService([.. vaults.Select((_, i) => Vault(i))], sp.GetRequiredService<ILogger<MultiVaultSigningKeyService>>());
    }

    /// <summary>
    /// The registered <see cref="HttpPipelineTransport"/> (tests: in-test vaults and Graph stand-ins served under their
    /// https names), or null: Azure.Core's default. Bearer tokens go over https only (Azure.Core's
    /// BearerTokenAuthenticationPolicy), so a stand-in is reached through this transport, never over plain http.
    /// </summary>
    private static HttpPipelineTransport? Transport(IServiceProvider services) => services.GetService<HttpPipelineTransport>();

    private static GraphPipeline.GraphClientOptions GraphOptions(IServiceProvider services)
    {
        var options = new GraphPipeline.GraphClientOptions();
        if (Transport(services) is { } transport)
        {
            options.Transport = transport;
        }

        return options;
    }

    /// <summary>The registered credential (tests), or DefaultAzureCredential: managed identity with AZURE_CLIENT_ID in Azure.</summary>
    private static TokenCredential Credential(IServiceProvider services) => services.GetService<TokenCredential>() ?? new DefaultAzureCredential();
}
