using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using TokenService.Azure;
using TokenService.Hosting;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;
using TokenService.Http;
using TokenService.Telemetry;

namespace TokenService.Server;

/// <summary>Builds the standalone host. Tests use it too, on Kestrel at 127.0.0.1 port 0.</summary>
public static class TokenServiceHost
{
    public static WebApplication Build(string[] args, Action<WebApplicationBuilder>? configure = null)
    {
        var builder = WebApplication.CreateBuilder(args);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Limits.MaxRequestBodySize = 1024 * 1024;
            kestrel.Limits.MaxRequestHeadersTotalSize = 32 * 1024;
        });
        configure?.Invoke(builder);
        if (DefaultUrls(builder.Configuration, builder.Environment) is { } urls)
        {
            builder.WebHost.UseUrls(urls);
        }

        // Adapters first: the core registers in-memory defaults only where nothing else was registered.
        builder.Services.AddTokenServiceAzureAdapters(builder.Configuration);
        builder.Services.AddTokenService(builder.Configuration, builder.Environment);
        builder.Services.AddHostedService<KeyRotationHostedService>();
        builder.Services.AddHostedService<CleanupHostedService>();

        // OTLP and/or Azure Monitor when configured (docs/operations.md). This host serves HTTP itself, so it also
        // exports ASP.NET Core's request spans and metrics and HttpClient's (JWKS, Key Vault, Tables) spans.
        builder.Services.AddTokenServiceTelemetry(builder.Configuration, otel => otel
            .WithTracing(t => t.AddSource("Microsoft.AspNetCore", "System.Net.Http"))
            .WithMetrics(m => m.AddMeter("Microsoft.AspNetCore.Hosting", "Microsoft.AspNetCore.Server.Kestrel", "System.Net.Http")));

        var app = builder.Build();
        app.UseExceptionHandler(errorApp => errorApp.Run(context =>
            ProblemResponses.WriteAsync(context, StatusCodes.Status500InternalServerError, "Internal Server Error", "The request failed; it has been logged.")));
        app.MapTokenService();
        app.MapTokenServiceFallback();
        return app;
    }

    /// <summary>
    /// Where to listen when nothing says where: in Development with no <c>--urls</c>, no <c>ASPNETCORE_URLS</c> /
    /// <c>DOTNET_URLS</c>, no <c>ASPNETCORE_HTTP_PORTS</c> / <c>HTTPS_PORTS</c> and no <c>Kestrel:Endpoints</c>, the
    /// address discovery advertises: the origin of <c>TokenService:Issuer</c> when that is plain http on a loopback
    /// address, else <see cref="TokenServiceServiceCollectionExtensions.DevelopmentIssuer"/> (http://127.0.0.1:7071),
    /// rather than ASP.NET Core's port 5000. Null (ASP.NET Core's defaults) in every other case.
    /// </summary>
    public static string? DefaultUrls(IConfiguration configuration, IHostEnvironment environment)
    {
        if (!environment.IsDevelopment()
            || !string.IsNullOrWhiteSpace(configuration[WebHostDefaults.ServerUrlsKey])
            || !string.IsNullOrWhiteSpace(configuration[WebHostDefaults.HttpPortsKey])
            || !string.IsNullOrWhiteSpace(configuration[WebHostDefaults.HttpsPortsKey])
            || configuration.GetSection("Kestrel:Endpoints").GetChildren().Any())
        {
            return null;
        }

        return Uri.TryCreate(configuration["TokenService:Issuer"], UriKind.Absolute, out var issuer)
            && issuer.Scheme == Uri.UriSchemeHttp && issuer.IsLoopback
            ? issuer.GetLeftPart(UriPartial.Authority)
            : TokenServiceServiceCollectionExtensions.DevelopmentIssuer;
    }
}
