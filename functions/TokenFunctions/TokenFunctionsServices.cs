using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using OpenTelemetry;
using OpenTelemetry.Trace;
using TokenService.Azure;
using Microsoft.Azure.Functions.Worker.OpenTelemetry;
using TokenService.Hosting;
using TokenService.Telemetry;

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

        // The worker's own Kestrel (ASP.NET Core integration) gets the standalone host's limits and no Server header;
        // the Functions host's Kestrel in front applies its own first (docs/api.md, "Under a Functions host").
        services.Configure<KestrelServerOptions>(KestrelLimits.Apply);

        // OTLP and/or Azure Monitor when configured (docs/operations.md, "Functions app"). UseFunctionsWorkerDefaults
        // tells the Functions host that the worker exports its own logs (worker capability WorkerOpenTelemetryEnabled),
        // so the host stops forwarding them and no log is counted twice; it is called only when an exporter is
        // configured, since otherwise the worker's logs must keep reaching the host. Request spans come from the host
        // (host.json telemetryMode OpenTelemetry), not from the worker's ASP.NET Core pipeline, so each request is one
        // server span; the worker's own "Invoke" span (source Microsoft.Azure.Functions.Worker, an internal span) takes
        // the host's trace context as its parent, so the service's spans join the host's trace.
        services.AddTokenServiceTelemetry(configuration, otel => otel
            .UseFunctionsWorkerDefaults()
            .WithTracing(t => t.AddSource("Microsoft.Azure.Functions.Worker")));
        return services;
    }
}
