using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.IdentityModel.Protocols;
using Microsoft.IdentityModel.Protocols.OpenIdConnect;
using Microsoft.IdentityModel.Tokens;

namespace TokenService.Validation;

/// <summary>
/// The token service's signing keys, fetched at once when a token names a <c>kid</c> that the scheme's cached JWKS does
/// not have. JwtBearer only asks IdentityModel's <c>ConfigurationManager</c> to refresh, which refetches in the
/// background and ignores further requests for its <c>RefreshInterval</c> (5 minutes by default): the request that met
/// a key published without notice (an immediate rotation or a revoked signing key) would get 401, and so might others
/// for minutes. Here the first such request fetches and waits; later ones reuse that fetch for
/// <see cref="SessionCheckOptions.UnknownKeyRefetchInterval"/>, and concurrent ones share it, so tokens with made-up
/// kids cannot make the API call the token service more than once per interval. A failed fetch is remembered for
/// <see cref="SessionCheckOptions.RetryAfter"/> (the request fails closed with 503 meanwhile).
/// Our own because neither IdentityModel nor JwtBearer offers an awaited refetch.
/// </summary>
internal sealed class SigningKeyRefetcher(TimeProvider time, TimeSpan interval, TimeSpan failureInterval)
{
    private readonly Lock _gate = new();
    private Task<Fetch>? _current;

    private sealed record Fetch(DateTimeOffset At, IReadOnlyList<SecurityKey>? Keys, string? Issuer);

    /// <summary>The keys and issuer of the service's current metadata; null keys when they cannot be fetched.</summary>
    public async Task<(IReadOnlyList<SecurityKey>? Keys, string? Issuer)> GetAsync(JwtBearerOptions options, CancellationToken cancellationToken)
    {
        Task<Fetch> fetch;
        lock (_gate)
        {
            var now = time.GetUtcNow();
            if (_current is not { IsCompletedSuccessfully: true } done || !StillFresh(done.Result, now))
            {
                _current = _current is { IsCompleted: false } running ? running : FetchAsync(options);
            }

            fetch = _current;
        }

        // The fetch itself is not tied to this request: a client that gives up must not cancel it for the others.
        var result = await fetch.WaitAsync(cancellationToken);
        return (result.Keys, result.Issuer);
    }

    private bool StillFresh(Fetch fetch, DateTimeOffset now) => now - fetch.At < (fetch.Keys is null ? failureInterval : interval);

    private async Task<Fetch> FetchAsync(JwtBearerOptions options)
    {
        try
        {
            var retriever = new HttpDocumentRetriever(options.Backchannel) { RequireHttps = options.RequireHttpsMetadata };
            using var timeout = new CancellationTokenSource(options.BackchannelTimeout);
            var configuration = await OpenIdConnectConfigurationRetriever.GetAsync(options.MetadataAddress, retriever, timeout.Token);

            // Let the scheme's own ConfigurationManager learn the keys too, so that it stops sending tokens here.
            options.ConfigurationManager?.RequestRefresh();
            return new Fetch(time.GetUtcNow(), [.. configuration.SigningKeys], configuration.Issuer);
        }
        catch (Exception)
        {
            // Whatever failed (unreachable, timed out, not a discovery document or JWKS), the keys are unknown: fail closed.
            return new Fetch(time.GetUtcNow(), null, null);
        }
    }
}
