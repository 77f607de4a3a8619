using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using TokenService.Keys;
using TokenService.Sessions;

namespace TokenService.Diagnostics;

/// <summary>
/// Registers the audit sink and puts the telemetry decorators around the signing key provider and the session store
/// registered so far (adapter or embedded default). Called at the end of AddTokenService; exporters are the hosts'
/// business (functions/TokenService.Telemetry).
/// </summary>
public static class DiagnosticsServiceCollectionExtensions
{
    public static IServiceCollection AddTokenServiceDiagnostics(this IServiceCollection services)
    {
        // Once per container: a second call would wrap the decorators again and record every operation twice.
        if (services.Any(d => d.ServiceType == typeof(Registered)))
        {
            return services;
        }

        services.AddSingleton<Registered>();
        services.AddMetrics();
        services.TryAddSingleton<IAuditSink, LoggerAuditSink>();
        services.AddTransient<JwksFetchMetricsHandler>();
        services.AddHttpClient("jwks").AddHttpMessageHandler<JwksFetchMetricsHandler>();
        Decorate<ISigningKeyService>(services, (sp, inner, owned) => new InstrumentedSigningKeyService(
            inner, owned, sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<IAuditSink>(), sp.GetRequiredService<TokenServiceMetrics>()));
        Decorate<ISessionStore>(services, (sp, inner, _) => new InstrumentedSessionStore(inner, sp.GetRequiredService<TokenServiceMetrics>()));
        return services;
    }

    /// <summary>The store or provider under the telemetry decorator, for callers that look for other interfaces on it.</summary>
    public static object Undecorated(object service) => service switch
    {
        InstrumentedSessionStore store => store.Inner,
        InstrumentedSigningKeyService keys => keys.Inner,
        _ => service,
    };

    private sealed class Registered
    {
    }

    // Replaces the last registration of TService with one that wraps what it would have produced. No decorator
    // library is served here, and Microsoft.Extensions.DependencyInjection has none: this is the usual descriptor swap.
    private static void Decorate<TService>(IServiceCollection services, Func<IServiceProvider, TService, bool, TService> decorate)
        where TService : class
    {
        var index = -1;
        for (var i = services.Count - 1; i >= 0; i--)
        {
            if (services[i].ServiceType == typeof(TService) && !services[i].IsKeyedService)
            {
                index = i;
                break;
            }
        }

        if (index < 0 || services[index].Lifetime != ServiceLifetime.Singleton)
        {
            return;
        }

        var original = services[index];
        Func<IServiceProvider, TService> create = original switch
        {
            { ImplementationInstance: TService instance } => _ => instance,
            { ImplementationFactory: { } factory } => sp => (TService)factory(sp),
            { ImplementationType: { } type } => sp => (TService)ActivatorUtilities.CreateInstance(sp, type),
            _ => throw new InvalidOperationException($"Cannot decorate the registration of {typeof(TService).Name}."),
        };

        // The container disposes what a factory returns, so the decorator disposes the inner service it was given,
        // except an instance registered as such (the container never disposed that).
        var owned = original.ImplementationInstance is null;
        services[index] = ServiceDescriptor.Singleton(sp => decorate(sp, create(sp), owned));
    }
}
