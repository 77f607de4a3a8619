using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using TokenService.Azure;
using TokenService.Hosting;
using TokenService.Http;

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

        // Adapters first: the core registers in-memory defaults only where nothing else was registered.
        builder.Services.AddTokenServiceAzureAdapters(builder.Configuration);
        builder.Services.AddTokenService(builder.Configuration, builder.Environment);
        builder.Services.AddHostedService<KeyRotationHostedService>();
        builder.Services.AddHostedService<CleanupHostedService>();

        var app = builder.Build();
        app.UseExceptionHandler(errorApp => errorApp.Run(context =>
            ProblemResponses.WriteAsync(context, StatusCodes.Status500InternalServerError, "Internal Server Error", "The request failed; it has been logged.")));
        app.MapTokenService();
        app.MapTokenServiceFallback();
        return app;
    }
}
