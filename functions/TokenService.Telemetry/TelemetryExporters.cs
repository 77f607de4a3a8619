using Microsoft.Extensions.Configuration;

namespace TokenService.Telemetry;

/// <summary>Where the hosts send traces, metrics and logs: chosen by the standard settings, both at once, or neither.</summary>
[Flags]
public enum TelemetryExporters
{
    /// <summary>No exporter: OpenTelemetry is not registered at all, so nothing listens and the instruments cost nothing.</summary>
    None = 0,

    /// <summary>OTLP, when <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set (the OpenTelemetry SDK's own environment variables apply).</summary>
    Otlp = 1,

    /// <summary>Azure Monitor (Application Insights), when <c>APPLICATIONINSIGHTS_CONNECTION_STRING</c> is set.</summary>
    AzureMonitor = 2,
}

public static class TelemetryExporterSelection
{
    /// <summary>The OpenTelemetry SDK's setting for the OTLP endpoint (OpenTelemetry specification, exporter configuration).</summary>
    public const string OtlpEndpointKey = "OTEL_EXPORTER_OTLP_ENDPOINT";

    /// <summary>The Application Insights connection string, as infra/ sets it on the Function App.</summary>
    public const string AzureMonitorConnectionStringKey = "APPLICATIONINSIGHTS_CONNECTION_STRING";

    /// <summary>How the app authenticates to Application Insights: <c>Authorization=AAD</c>, with an optional <c>ClientId=</c>.</summary>
    public const string AzureMonitorAuthenticationStringKey = "APPLICATIONINSIGHTS_AUTHENTICATION_STRING";

    /// <summary>
    /// Whether <paramref name="authenticationString"/> asks for Microsoft Entra ID authentication
    /// (<c>Authorization=AAD</c>), and the user-assigned identity's client id when it names one.
    /// </summary>
    public static bool EntraAuthentication(string? authenticationString, out string? clientId)
    {
        clientId = null;
        var aad = false;
        foreach (var part in (authenticationString ?? string.Empty).Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var eq = part.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                continue;
            }

            var (name, value) = (part[..eq].Trim(), part[(eq + 1)..].Trim());
            if (name.Equals("Authorization", StringComparison.OrdinalIgnoreCase))
            {
                aad = value.Equals("AAD", StringComparison.OrdinalIgnoreCase);
            }
            else if (name.Equals("ClientId", StringComparison.OrdinalIgnoreCase) && value.Length > 0)
            {
                clientId = value;
            }
        }

        return aad;
    }

    /// <summary>The exporters that <paramref name="configuration"/> asks for (environment variables are part of it in both hosts).</summary>
    public static TelemetryExporters From(IConfiguration configuration)
    {
        var selected = TelemetryExporters.None;
        if (!string.IsNullOrWhiteSpace(configuration[OtlpEndpointKey]))
        {
            selected |= TelemetryExporters.Otlp;
        }

        if (!string.IsNullOrWhiteSpace(configuration[AzureMonitorConnectionStringKey]))
        {
            selected |= TelemetryExporters.AzureMonitor;
        }

        return selected;
    }
}
