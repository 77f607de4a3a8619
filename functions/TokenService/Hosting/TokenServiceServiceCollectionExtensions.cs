using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using TokenService.Clients;
using TokenService.Configuration;
using TokenService.Diagnostics;
using TokenService.Dpop;
using TokenService.Endpoints;
using TokenService.Events;
using TokenService.Http;
using TokenService.Idp;
using TokenService.Keys;
using TokenService.Sessions;
using TokenService.SharedSignals;
using TokenService.TokenRequests;
using TokenService.Tokens;
using TokenService.Jwt;

namespace TokenService.Hosting;

/// <summary>
/// Registers the core for either host. Stores and signing keys are registered with TryAdd, so adapters
/// (Table Storage, Key Vault) registered before this call take their place.
/// </summary>
public static class TokenServiceServiceCollectionExtensions
{
    /// <summary>Issuer assumed in Development when <c>TokenService:Issuer</c> is not set (the README's local URL).</summary>
    public const string DevelopmentIssuer = "http://127.0.0.1:7071";

    public static IServiceCollection AddTokenService(this IServiceCollection services, IConfiguration configuration, IHostEnvironment environment)
    {
        services.TryAddSingleton(TimeProvider.System);
        services.AddHttpClient("jwks");

        services.AddOptions<TokenServiceOptions>()
            .Bind(configuration.GetSection(TokenServiceOptions.SectionName))
            .PostConfigure(o =>
            {
                if (string.IsNullOrWhiteSpace(o.Issuer) && environment.IsDevelopment())
                {
                    o.Issuer = DevelopmentIssuer;
                }
            })
            .ValidateOnStart();
        services.AddOptions<IdpOptions>().Bind(configuration.GetSection(IdpOptions.SectionName)).ValidateOnStart();
        services.AddOptions<KeysOptions>()
            .Bind(configuration.GetSection(KeysOptions.SectionName))
            // A relative path resolves against the content root (not the current directory); the default lives outside
            // the source tree, in the user's local application data, one file per issuer (see DevelopmentKeyFile).
            .PostConfigure<IOptions<TokenServiceOptions>>((o, tokenService) => o.DevelopmentKeyPath = DevelopmentKeyFile.Resolve(
                o.DevelopmentKeyPath, environment.ContentRootPath, environment.ApplicationName, issuer: IssuerForKeyFile(tokenService, configuration)))
            .ValidateOnStart();
        services.AddOptions<RateLimitOptions>().Bind(configuration.GetSection(RateLimitOptions.SectionName)).ValidateOnStart();
        services.AddOptions<Dpop.DpopOptions>().Bind(configuration.GetSection(Dpop.DpopOptions.SectionName)).ValidateOnStart();
        services.AddOptions<StorageOptions>().Bind(configuration.GetSection(StorageOptions.SectionName)).ValidateOnStart();
        services.AddOptions<EventsOptions>().Bind(configuration.GetSection(EventsOptions.SectionName)).ValidateOnStart();
        services.AddOptions<SharedSignalsOptions>().Bind(configuration.GetSection(SharedSignalsOptions.SectionName)).ValidateOnStart();
        services.AddOptions<ClientRegistryOptions>()
            .Configure<IOptions<TokenServiceOptions>>((o, tokenService) =>
            {
                configuration.GetSection(ClientOptions.SectionName).Bind(o.Clients);
                if (o.Clients.Count == 0 && environment.IsDevelopment())
                {
                    o.Clients.AddRange(DevelopmentClients.For(tokenService.Value.IssuerOrThrow));
                }
            })
            .ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<TokenServiceOptions>, TokenServiceOptionsValidator>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<TokenServiceOptions>, KeyVaultReferenceValidator>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<StorageOptions>, StorageOptionsValidator>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<IdpOptions>, IdpOptionsValidator>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<KeysOptions>, KeysOptionsValidator>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ClientRegistryOptions>, ClientRegistryOptionsValidator>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<EventsOptions>, EventsOptionsValidator>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<SharedSignalsOptions>, SharedSignalsOptionsValidator>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<RateLimitOptions>, RateLimitOptionsValidator>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<Dpop.DpopOptions>, Dpop.DpopOptionsValidator>());

        // Ports with embedded defaults.
        services.TryAddSingleton<ISessionStore, InMemorySessionStore>();
        services.TryAddSingleton<IAccessTokenDenyList, InMemoryAccessTokenDenyList>();
        services.TryAddSingleton<IIdTokenReplayCache, InMemoryIdTokenReplayCache>();
        services.TryAddSingleton<Dpop.IDpopReplayCache, Dpop.InMemoryDpopReplayCache>();
        services.TryAddSingleton<ISigningKeyService, LocalSigningKeyService>();
        services.TryAddSingleton<IClientStore, ConfigurationClientStore>();
        services.TryAddSingleton<IProcessedEventStore, InMemoryProcessedEventStore>();
        services.TryAddSingleton(sp => new ExpiredStateCleanup(
            CleanersOf(sp), sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<Microsoft.Extensions.Logging.ILogger<ExpiredStateCleanup>>()));

        // IdP trust: the configured IdP, or in Development without one the built-in stand-in.
        services.TryAddSingleton(sp =>
        {
            var idp = sp.GetRequiredService<IOptions<IdpOptions>>().Value;
            if (!idp.IsConfigured)
            {
                var dev = sp.GetService<DevelopmentIdp>() ?? throw new InvalidOperationException("Idp is not configured.");
                return new IdpTrust(dev.Issuer, DevelopmentIdp.Audience, "sub", dev);
            }

            return new IdpTrust(idp.Issuer!, idp.Audience!, idp.UserIdClaim, new JwksConfigurationManager(
                new JwksSource("idp", idp.JwksUri, idp.JwksPath, idp.JwksRefetchInterval, idp.JwksCacheLifetime), sp.GetRequiredService<TimeProvider>(),
                sp.GetRequiredService<Microsoft.Extensions.Logging.ILogger<JwksConfigurationManager>>(), sp.GetService<IHttpClientFactory>()));
        });
        if (environment.IsDevelopment() && !new IdpOptions().Also(o => configuration.GetSection(IdpOptions.SectionName).Bind(o)).IsConfigured)
        {
            services.TryAddSingleton(sp => new DevelopmentIdp(sp.GetRequiredService<IOptions<TokenServiceOptions>>().Value.IssuerOrThrow, sp.GetRequiredService<TimeProvider>()));
            services.TryAddSingleton<DevelopmentIdpEndpoint>();
        }

        // Core services. The service's instruments live on a meter of this container's IMeterFactory (AddMetrics, which
        // both hosts reach through here), so every host in a process reports into instruments of its own.
        services.AddMetrics();
        services.TryAddSingleton<TokenServiceMetrics>();
        services.TryAddSingleton<RequestRateLimiter>();
        services.TryAddSingleton<ClientAuthenticationBackoff>();
        services.TryAddSingleton<ClientAuthenticator>();
        services.TryAddSingleton<CorsPolicy>();
        services.TryAddSingleton<ClientRequestReader>();
        // The Shared Signals transmitter (docs/shared-signals.md). Its streams are told of ended sessions, revoked access
        // tokens and revoked keys only when it is enabled: otherwise no sink is registered and those changes cost nothing more.
        // Streams and their outboxes: in memory unless the Azure adapters registered the Table store (Storage settings).
        services.TryAddSingleton<ISsfStreamStore, InMemorySsfStreamStore>();
        services.TryAddSingleton<SsfStreamRegistry>();
        services.TryAddSingleton<SecurityEventTokenSigner>();

        // Push delivery (RFC 8935): registered on both hosts even when off, since the Functions timer trigger that drains
        // the outbox takes it (it does nothing then). Redirects are not followed: a SET and the receiver's authorization
        // header go only to its endpoint_url.
        services.AddHttpClient(SsfPushDeliveryService.HttpClientName)
            .ConfigurePrimaryHttpMessageHandler(() => new SocketsHttpHandler { AllowAutoRedirect = false, UseCookies = false });
        services.TryAddSingleton<SsfPushDeliveryService>();
        if (configuration.GetValue<bool>($"{SharedSignalsOptions.SectionName}:{nameof(SharedSignalsOptions.Enabled)}"))
        {
            services.TryAddSingleton<ISessionEndedSink>(sp => sp.GetRequiredService<SsfStreamRegistry>());
            // Revoking an access token by its jti and an operator's key revocation queue our own events (SsfProtocol).
            services.TryAddSingleton<SsfRevocationSignals>();
            services.TryAddSingleton<IAccessTokenRevokedSink>(sp => sp.GetRequiredService<SsfRevocationSignals>());
            services.TryAddSingleton<ISigningKeyRevokedSink>(sp => sp.GetRequiredService<SsfRevocationSignals>());

            // Inactive streams are deleted by the cleanup that already runs on a timer (ExpiredStateCleanup).
            services.AddSingleton<IExpiredStateCleaner>(sp => sp.GetRequiredService<SsfStreamRegistry>());

            // Each instance's delivery loop (both hosts): pushes what this instance queues at once, sweeps the store for
            // the rest; a lease per stream keeps one instance at a time on a stream.
            services.AddHostedService(sp => sp.GetRequiredService<SsfPushDeliveryService>());
        }

        services.TryAddSingleton<SessionStateCache>();
        services.TryAddSingleton<SessionService>();
        services.TryAddSingleton<IUserSessionRevoker>(sp => sp.GetRequiredService<SessionService>());
        services.TryAddSingleton<SigningKeyResolver>();
        services.TryAddSingleton<AccessTokenIssuer>();
        services.TryAddSingleton<AccessTokenVerifier>();
        services.TryAddSingleton<IdTokenValidator>();
        services.TryAddSingleton<BearerAuthentication>();
        services.TryAddSingleton<Dpop.IDpopNonceService, Dpop.HmacDpopNonceService>();
        services.TryAddSingleton<Dpop.IDpopProofValidator, Dpop.DpopProofValidator>();
        services.TryAddSingleton<DpopRequestReader>();
        services.TryAddSingleton<SecurityEventTokenValidator>();
        services.TryAddSingleton<GraphSubscriptionHealth>();
        services.TryAddSingleton<SigningKeyHealth>();
        services.TryAddSingleton(sp =>
        {
            // The translators and the lifecycle handler log under the processor's category (event ids 5001 to 5005).
            var logger = sp.GetRequiredService<Microsoft.Extensions.Logging.ILogger<IdpEventProcessor>>();
            var events = sp.GetRequiredService<IOptions<EventsOptions>>();

            // Asked in this order, the first that knows an event deciding it: Graph first, because it checks the
            // clientState of every Microsoft.Graph.* notification before anything reads it.
            IIdpEventTranslator[] translators =
            [
                new GraphIdpEventTranslator(events, logger, sp.GetService<IGraphUserLookup>()),
                new GenericIdpEventTranslator(),
                new SecurityEventTranslator(sp.GetRequiredService<SecurityEventTokenValidator>()),
                new Auth0IdpEventTranslator(),
            ];
            return new IdpEventProcessor(
                sp.GetRequiredService<IUserSessionRevoker>(), sp.GetRequiredService<IProcessedEventStore>(), translators, events, sp.GetRequiredService<TimeProvider>(), logger,
                sp.GetRequiredService<TokenServiceMetrics>(),
                new GraphLifecycleNotifications(logger, sp.GetRequiredService<TokenServiceMetrics>(), sp.GetRequiredService<GraphSubscriptionHealth>(), sp.GetRequiredService<GraphSubscriptionManager>()),
                sp.GetService<IAuditSink>());
        });
        services.TryAddSingleton<GraphSubscriptionManager>();

        // Endpoints, each written once for both hosts.
        services.TryAddSingleton<TokenRequestValidator>();
        services.TryAddSingleton<TokenResponseWriter>();
        services.TryAddSingleton<TokenEndpoint>();
        services.TryAddSingleton<RevocationEndpoint>();
        services.TryAddSingleton<IntrospectionEndpoint>();
        services.TryAddSingleton<DiscoveryEndpoint>();
        services.TryAddSingleton<JwksEndpoint>();
        services.TryAddSingleton<SessionsEndpoint>();
        services.TryAddSingleton<ManagementEndpoint>();
        services.TryAddSingleton<HealthEndpoint>();
        services.TryAddSingleton<IdpEventsEndpoint>();
        services.TryAddSingleton<SharedSignalsEndpoint>();

        // No request line in any log: they carry the query string, which may hold the webhook secret (?key=).
        services.PostConfigure<Microsoft.Extensions.Logging.LoggerFilterOptions>(RequestLineLogFilter.Apply);

        // Metrics, spans and the audit trail (docs/operations.md); last, so that it wraps the adapters registered above.
        services.AddTokenServiceDiagnostics();
        return services;
    }

    /// <summary>
    /// Test hosts only: lets the local file signing key run outside Development (see
    /// <see cref="LocalSigningKeyOutsideDevelopment"/>). Never call it from a deployed host.
    /// </summary>
    public static IServiceCollection AllowLocalSigningKeyOutsideDevelopment(this IServiceCollection services)
    {
        services.TryAddSingleton(LocalSigningKeyOutsideDevelopment.Instance);
        return services;
    }

    /// <summary>
    /// Test hosts only: lets the in-memory session store run outside Development (see
    /// <see cref="InMemorySessionsOutsideDevelopment"/>). Never call it from a deployed host.
    /// </summary>
    public static IServiceCollection AllowInMemorySessionsOutsideDevelopment(this IServiceCollection services)
    {
        services.TryAddSingleton(InMemorySessionsOutsideDevelopment.Instance);
        return services;
    }

    /// <summary>Every store that holds expiring state, once each.</summary>
    private static IEnumerable<IExpiredStateCleaner> CleanersOf(IServiceProvider sp)
    {
        object[] stores = [DiagnosticsServiceCollectionExtensions.Undecorated(sp.GetRequiredService<ISessionStore>()), sp.GetRequiredService<IAccessTokenDenyList>(), sp.GetRequiredService<IIdTokenReplayCache>(), sp.GetRequiredService<IProcessedEventStore>()];
        return stores.OfType<IExpiredStateCleaner>().Concat(sp.GetServices<IExpiredStateCleaner>()).Distinct();
    }

    private static T Also<T>(this T value, Action<T> action)
    {
        action(value);
        return value;
    }

    /// <summary>
    /// The issuer that names the development key file. Invalid TokenService settings must not hide the Keys settings'
    /// own errors at start-up (every bad setting is reported at once), so the configured value stands in for them.
    /// </summary>
    private static string? IssuerForKeyFile(IOptions<TokenServiceOptions> tokenService, IConfiguration configuration)
    {
        try
        {
            return tokenService.Value.Issuer;
        }
        catch (OptionsValidationException)
        {
            return configuration[$"{TokenServiceOptions.SectionName}:Issuer"];
        }
    }
}

/// <summary>Clients registered in Development when the <c>Clients</c> section is empty (README walkthrough).</summary>
public static class DevelopmentClients
{
    /// <summary>
    /// The development clients; the user-facing ones may also ask for tokens for the session endpoints
    /// (<c>audience=<paramref name="issuer"/></c>), so that the README's <c>/sessions</c> calls work.
    /// </summary>
    public static IReadOnlyList<ClientOptions> For(string issuer) =>
    [
        new() { ClientId = "dev-spa", Type = "spa", DisplayName = "SPA sample", AllowedOrigins = ["http://localhost:5173", "http://127.0.0.1:5173"], AllowedAudiences = ["api://dev", issuer], AllowedScopes = ["openid", "profile", "api.read", "api.write"] },
        new() { ClientId = "dev-confidential", Type = "confidential", DisplayName = "Development web app", Secret = "dev-confidential-secret", AllowedAudiences = ["api://dev", issuer], AllowedScopes = ["openid", "profile", "api.read", "api.write"] },
        new() { ClientId = "dev-api", Type = "resource_server", Secret = "dev-api-secret", AllowedAudiences = ["api://dev"] },
        new() { ClientId = "dev-admin", Type = "admin", Secret = "dev-admin-secret" },
    ];
}
