using Azure.Core.Pipeline;
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

    /// <summary>
    /// An Azure.Core transport that carries requests addressed to a public https name to an in-test server on loopback
    /// http (<paramref name="route"/> gives the server for a request's URI; null refuses it: no request leaves the machine).
    /// Azure.Core's BearerTokenAuthenticationPolicy sends tokens over https only, so clients address stand-ins by their
    /// https names and this transport, below the policies, delivers them.
    /// </summary>
    public static HttpPipelineTransport Transport(Func<Uri, Uri?> route) => new HttpClientTransport(new RouteHandler(route));

    /// <summary>Every request to <paramref name="target"/>, whatever name it was addressed to.</summary>
    public static HttpPipelineTransport Transport(Uri target) => Transport(_ => target);

    private sealed class RouteHandler(Func<Uri, Uri?> route) : DelegatingHandler(new SocketsHttpHandler())
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var target = route(request.RequestUri!) ?? throw new InvalidOperationException($"No in-test server serves {request.RequestUri!.Host}.");
            request.RequestUri = new UriBuilder(request.RequestUri!) { Scheme = target.Scheme, Host = target.Host, Port = target.Port }.Uri;
            return base.SendAsync(request, cancellationToken);
        }
    }
}
