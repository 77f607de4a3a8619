using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using TokenService.Azure;
using TokenService.Hosting;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;
using TokenService.Http;
using TokenService.Telemetry;

namespace TokenService.Server;

/// <summary>Builds the standalone host. Tests use it too, on Kestrel at 127.0.0.1 port 0.</summary>
public static partial class TokenServiceHost
{
    public static WebApplication Build(string[] args, Action<WebApplicationBuilder>? configure = null)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = DefaultContentRoot(args) });
        builder.WebHost.ConfigureKestrel(KestrelLimits.Apply);
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
        builder.Services.AddHostedService<GraphSubscriptionHostedService>();

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
        if (app.Environment.IsDevelopment() && string.IsNullOrWhiteSpace(app.Configuration["TokenService:Issuer"]))
        {
            app.Lifetime.ApplicationStarted.Register(() => WarnIfListeningElsewhere(app));
        }

        return app;
    }

    /// <summary>
    /// Development only, with no <c>TokenService:Issuer</c>: discovery advertises the development issuer
    /// (http://127.0.0.1:7071), so a host told to listen elsewhere (<c>--urls</c>) would send every client to a port
    /// where nothing answers, or to another instance. Warn with the exact setting to add. Outside Development there
    /// is no default issuer (TokenServiceOptionsValidator refuses to start without one) and the listen address may
    /// rightly differ from it (a reverse proxy in front), so nothing is compared there.
    /// </summary>
    private static void WarnIfListeningElsewhere(WebApplication app)
    {
        var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
        var listening = addresses.Select(a => Uri.TryCreate(a.Replace("://+", "://127.0.0.1", StringComparison.Ordinal).Replace("://*", "://127.0.0.1", StringComparison.Ordinal), UriKind.Absolute, out var uri) ? uri : null)
            .OfType<Uri>()
            .ToList();
        var issuer = new Uri(TokenServiceServiceCollectionExtensions.DevelopmentIssuer);
        if (listening.Count == 0 || listening.Any(uri => uri.Scheme == issuer.Scheme && uri.Port == issuer.Port && (uri.IsLoopback || uri.Host is "0.0.0.0" or "[::]")))
        {
            return;
        }

        var first = listening[0];
        var suggested = first.IsLoopback ? first.GetLeftPart(UriPartial.Authority) : $"{first.Scheme}://127.0.0.1:{first.Port}";
        LogIssuerElsewhere(app.Services.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(TokenServiceHost).FullName!),
            string.Join(", ", addresses), issuer.GetLeftPart(UriPartial.Authority), suggested);
    }

    [LoggerMessage(EventId = 1401, Level = LogLevel.Warning,
        Message = "Listening on {Addresses}, but TokenService:Issuer is not set, so discovery and every token advertise {DevelopmentIssuer}: set TokenService__Issuer={Suggested} (or pass --TokenService:Issuer {Suggested}).")]
    private static partial void LogIssuerElsewhere(ILogger logger, string addresses, string developmentIssuer, string suggested);

    /// <summary>
    /// The content root when none is given (no <c>--contentRoot</c>, no <c>ASPNETCORE_CONTENTROOT</c> /
    /// <c>DOTNET_CONTENTROOT</c>): the app's own folder, not the working folder. Started from another folder (README:
    /// <c>dotnet functions/TokenService.Server/bin/…/TokenService.Server.dll</c>) the host would otherwise miss its
    /// appsettings.json and with it the log levels it ships with. Null when one is given, so that it wins.
    /// </summary>
    public static string? DefaultContentRoot(string[] args)
    {
        var given = new ConfigurationBuilder()
            .AddEnvironmentVariables("DOTNET_")
            .AddEnvironmentVariables("ASPNETCORE_")
            .AddCommandLine(args)
            .Build()[HostDefaults.ContentRootKey];
        return string.IsNullOrWhiteSpace(given) ? AppContext.BaseDirectory : null;
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
