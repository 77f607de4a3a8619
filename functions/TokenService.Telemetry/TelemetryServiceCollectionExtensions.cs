using Azure.Identity;
using Azure.Monitor.OpenTelemetry.Exporter;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry;
using OpenTelemetry.Resources;
using TokenService.Diagnostics;

namespace TokenService.Telemetry;

/// <summary>
/// The one OpenTelemetry registration of both hosts: the service's meter and activity source, its logs (the audit
/// trail among them), and the exporters that configuration selects (<see cref="TelemetryExporterSelection"/>).
/// docs/operations.md describes the settings.
/// </summary>
public static class TelemetryServiceCollectionExtensions
{
    public const string DefaultServiceName = "token-service";

    /// <summary>
    /// Registers OpenTelemetry when an exporter is configured, and nothing otherwise. <paramref name="configureHost"/>
    /// adds what only one host has (the standalone host's ASP.NET Core spans; the Functions worker's defaults) and runs
    /// only when something is exported.
    /// </summary>
    public static TelemetryExporters AddTokenServiceTelemetry(
        this IServiceCollection services, IConfiguration configuration, Action<IOpenTelemetryBuilder>? configureHost = null)
    {
        var exporters = TelemetryExporterSelection.From(configuration);
        if (exporters == TelemetryExporters.None)
        {
            return exporters;
        }

        var builder = services.AddOpenTelemetry()
            .ConfigureResource(r => r.AddService(configuration["OTEL_SERVICE_NAME"] is { Length: > 0 } name ? name : DefaultServiceName))
            .WithTracing(t => t.AddSource(TokenServiceDiagnostics.Name))
            .WithMetrics(m => m.AddMeter(TokenServiceDiagnostics.Name))
            .WithLogging();
        configureHost?.Invoke(builder);

        if (exporters.HasFlag(TelemetryExporters.Otlp))
        {
            // Endpoint, protocol, headers and timeouts come from the standard OTEL_EXPORTER_OTLP_* settings.
            builder.UseOtlpExporter();
        }

        if (exporters.HasFlag(TelemetryExporters.AzureMonitor))
        {
            var entraClientId = TelemetryExporterSelection.EntraAuthentication(configuration[TelemetryExporterSelection.AzureMonitorAuthenticationStringKey], out var clientId);
            builder.UseAzureMonitorExporter(o =>
            {
                o.ConnectionString = configuration[TelemetryExporterSelection.AzureMonitorConnectionStringKey];
                if (entraClientId)
                {
                    // infra/ disables local authentication on Application Insights (DisableLocalAuth) and gives the app
                    // APPLICATIONINSIGHTS_AUTHENTICATION_STRING "ClientId=…;Authorization=AAD". The Functions host honours it for its
                    // own telemetry; the exporter does not read it, so the worker passes the managed identity itself.
                    o.Credential = new DefaultAzureCredential(new DefaultAzureCredentialOptions { ManagedIdentityClientId = clientId });
                }
            });
        }

        return exporters;
    }
}
