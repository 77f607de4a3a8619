using Microsoft.Azure.Functions.Worker;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;
using TokenService.Telemetry;
using TokenService.Tests.Infrastructure;

namespace TokenService.Tests.Observability;

/// <summary>Which exporters configuration selects, and what each host registers for them (docs/operations.md).</summary>
public sealed class TelemetryExporterTests
{
    // A syntactically valid connection string whose endpoints are this machine's discard port: nothing leaves it.
    private const string ConnectionString = "InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=http://127.0.0.1:9/;LiveEndpoint=http://127.0.0.1:9/";

    private static IConfiguration Config(string? otlp, string? appInsights, string? authentication = null) =>
        new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            [TelemetryExporterSelection.OtlpEndpointKey] = otlp,
            [TelemetryExporterSelection.AzureMonitorConnectionStringKey] = appInsights,
            [TelemetryExporterSelection.AzureMonitorAuthenticationStringKey] = authentication,
        }).Build();

    [Theory]
    [InlineData(null, null, TelemetryExporters.None)]
    [InlineData("", "  ", TelemetryExporters.None)]
    [InlineData("http://collector:4317", null, TelemetryExporters.Otlp)]
    [InlineData(null, ConnectionString, TelemetryExporters.AzureMonitor)]
    [InlineData("http://collector:4317", ConnectionString, TelemetryExporters.Otlp | TelemetryExporters.AzureMonitor)]
    public void Settings_select_otlp_azure_monitor_both_or_none(string? otlp, string? appInsights, TelemetryExporters expected) =>
        Assert.Equal(expected, TelemetryExporterSelection.From(Config(otlp, appInsights)));

    [Fact]
    public void Without_an_exporter_setting_no_OpenTelemetry_pipeline_is_registered()
    {
        var services = new ServiceCollection();
        Assert.Equal(TelemetryExporters.None, services.AddTokenServiceTelemetry(Config(null, null)));
        using var provider = services.BuildServiceProvider();
        Assert.Null(provider.GetService<TracerProvider>());
        Assert.Null(provider.GetService<MeterProvider>());
    }

    [Theory]
    [InlineData("http://127.0.0.1:9", null)]
    [InlineData(null, ConnectionString)]
    [InlineData("http://127.0.0.1:9", ConnectionString)]
    public void A_configured_exporter_builds_tracer_and_meter_providers(string? otlp, string? appInsights)
    {
        var services = new ServiceCollection();
        services.AddLogging();
        var hostCallbacks = 0;
        var selected = services.AddTokenServiceTelemetry(Config(otlp, appInsights), _ => hostCallbacks++);
        Assert.NotEqual(TelemetryExporters.None, selected);
        Assert.Equal(1, hostCallbacks);
        using var provider = services.BuildServiceProvider();
        Assert.NotNull(provider.GetService<TracerProvider>());
        Assert.NotNull(provider.GetService<MeterProvider>());
    }

    [Theory]
    [InlineData("ClientId=1b2c;Authorization=AAD", true, "1b2c")]
    [InlineData("Authorization=AAD", true, null)]
    [InlineData(" authorization = aad ; clientid = x ", true, "x")]
    [InlineData("ClientId=1b2c", false, "1b2c")]
    [InlineData(null, false, null)]
    public void The_application_insights_authentication_string_selects_entra_id_and_the_identity(string? value, bool entra, string? clientId)
    {
        Assert.Equal(entra, TelemetryExporterSelection.EntraAuthentication(value, out var id));
        Assert.Equal(clientId, id);
    }

    /// <summary>
    /// The Functions worker announces that it exports its own logs (so the host stops forwarding them, and none is
    /// counted twice) only when an exporter is configured: otherwise the host must keep receiving them.
    /// </summary>
    [Theory]
    [InlineData(null, false)]
    [InlineData("http://127.0.0.1:9", true)]
    public void The_functions_worker_takes_over_its_logs_only_when_it_exports_them(string? otlp, bool takesOver)
    {
        var settings = new Dictionary<string, string?>
        {
            ["TokenService:Issuer"] = TokenServiceTestHost.Issuer,
            [TelemetryExporterSelection.OtlpEndpointKey] = otlp,
        };
        using var host = FunctionsAppFactory.Build("Development", settings);
        var capabilities = host.Services.GetRequiredService<IOptions<WorkerOptions>>().Value.Capabilities;
        Assert.Equal(takesOver, capabilities.TryGetValue("WorkerOpenTelemetryEnabled", out var value) && value == bool.TrueString);
    }
}
