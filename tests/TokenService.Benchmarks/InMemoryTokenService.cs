using System.Net;
using System.Text;

namespace TokenService.Benchmarks;

/// <summary>
/// The token service as a resource server's backchannel sees it, answered in memory: discovery, the JWKS, and
/// introspection saying active. Only the warm validation path is measured.
/// </summary>
internal sealed class InMemoryTokenService(string issuer, string jwks) : HttpMessageHandler
{
    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var body = request.RequestUri!.AbsolutePath switch
        {
            "/.well-known/openid-configuration" => $"{{\"issuer\":\"{issuer}\",\"jwks_uri\":\"{issuer}/jwks\",\"introspection_endpoint\":\"{issuer}/introspect\"}}",
            "/jwks" => jwks,
            _ => "{\"active\":true}",
        };
        return Task.FromResult(new HttpResponseMessage(HttpStatusCode.OK) { Content = new StringContent(body, Encoding.UTF8, "application/json") });
    }
}
