namespace TokenService.Tests.Infrastructure;

/// <summary>
/// A resource server's backchannel to a test host: sends requests for the token service's public issuer URL (discovery,
/// JWKS, introspection) to where the host listens, and counts them.
/// </summary>
public sealed class IssuerRewriteHandler(Uri target) : DelegatingHandler(new SocketsHttpHandler())
{
    public int Requests;

    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref Requests);
        request.RequestUri = new UriBuilder(request.RequestUri!) { Scheme = target.Scheme, Host = target.Host, Port = target.Port }.Uri;
        return base.SendAsync(request, cancellationToken);
    }
}
