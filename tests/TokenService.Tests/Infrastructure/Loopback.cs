using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;

namespace TokenService.Tests.Infrastructure;

/// <summary>In-test HTTP servers: real Kestrel on 127.0.0.1, port 0 (no TestHost package here).</summary>
public static class Loopback
{
    /// <summary>Starts <paramref name="app"/> (built with --urls http://127.0.0.1:0 or UseUrls) and returns where it listens.</summary>
    public static async Task<Uri> StartAsync(WebApplication app)
    {
        await app.StartAsync();
        return new Uri(app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First());
    }
}
