using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TokenService.Configuration;
using TokenService.Validation.Jose;

namespace TokenService.Idp;

/// <summary>
/// The IdP's signing keys from <c>Idp:JwksPath</c> or <c>Idp:JwksUri</c>, cached. An unknown <c>kid</c>
/// triggers at most one refetch per <see cref="IdpOptions.JwksRefetchInterval"/> (key rollover without
/// letting attackers drive fetches). When a refresh fails the cached keys keep serving.
/// </summary>
public sealed partial class IdpKeyResolver : IVerificationKeyResolver, IDisposable
{
    private const int MaxJwksBytes = 256 * 1024;

    private readonly IdpOptions _options;
    private readonly IHttpClientFactory? _httpClients;
    private readonly TimeProvider _time;
    private readonly ILogger<IdpKeyResolver> _logger;
    private readonly SemaphoreSlim _fetchGate = new(1, 1);
    private volatile KeyCache? _cache;
    private DateTimeOffset _lastFetchAttempt = DateTimeOffset.MinValue;

    private sealed record KeyCache(IReadOnlyDictionary<string, VerificationKey> ByKid, IReadOnlyList<VerificationKey> All, DateTimeOffset LoadedAt);

    public IdpKeyResolver(IOptions<IdpOptions> options, TimeProvider time, ILogger<IdpKeyResolver> logger, IHttpClientFactory? httpClients = null)
    {
        _options = options.Value;
        _time = time;
        _logger = logger;
        _httpClients = httpClients;
    }

    public ValueTask<KeyResolution> ResolveAsync(string? kid, CancellationToken cancellationToken)
    {
        var cache = _cache;
        if (cache is not null && _time.GetUtcNow() - cache.LoadedAt < _options.JwksCacheLifetime && Find(cache, kid) is { } key)
        {
            return ValueTask.FromResult(KeyResolution.Found(key));
        }

        return ResolveSlowAsync(kid, cancellationToken);
    }

    private async ValueTask<KeyResolution> ResolveSlowAsync(string? kid, CancellationToken cancellationToken)
    {
        await _fetchGate.WaitAsync(cancellationToken);
        try
        {
            var now = _time.GetUtcNow();
            var cache = _cache;
            var stale = cache is null || now - cache.LoadedAt >= _options.JwksCacheLifetime;
            if (cache is not null && !stale && Find(cache, kid) is { } found)
            {
                return KeyResolution.Found(found);
            }

            // Unknown kid or stale cache: refetch, but no more often than the refetch interval.
            if (cache is null || now - _lastFetchAttempt >= _options.JwksRefetchInterval)
            {
                _lastFetchAttempt = now;
                try
                {
                    cache = await FetchAsync(now, cancellationToken);
                    _cache = cache;
                }
                catch (Exception ex) when (ex is HttpRequestException or IOException or FormatException or TaskCanceledException or System.Text.Json.JsonException or UnauthorizedAccessException)
                {
                    LogFetchFailed(_logger, ex.GetType().Name);
                    if (cache is null)
                    {
                        return KeyResolution.Unavailable;
                    }
                }
            }

            return cache is not null && Find(cache, kid) is { } key ? KeyResolution.Found(key) : KeyResolution.Unknown;
        }
        finally
        {
            _fetchGate.Release();
        }
    }

    private static VerificationKey? Find(KeyCache cache, string? kid) =>
        kid is null
            ? (cache.All.Count == 1 ? cache.All[0] : null)
            : cache.ByKid.GetValueOrDefault(kid);

    private async Task<KeyCache> FetchAsync(DateTimeOffset now, CancellationToken cancellationToken)
    {
        byte[] json;
        if (!string.IsNullOrEmpty(_options.JwksPath))
        {
            var info = new FileInfo(_options.JwksPath);
            if (info.Exists && info.Length > MaxJwksBytes)
            {
                throw new FormatException("The IdP JWKS file is too large.");
            }

            json = await File.ReadAllBytesAsync(_options.JwksPath, cancellationToken);
        }
        else
        {
            var client = _httpClients?.CreateClient("idp-jwks") ?? throw new InvalidOperationException("No HTTP client factory.");
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(10));
            using var response = await client.GetAsync(_options.JwksUri, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
            response.EnsureSuccessStatusCode();
            if (response.Content.Headers.ContentLength > MaxJwksBytes)
            {
                throw new FormatException("The IdP JWKS document is too large.");
            }

            json = await response.Content.ReadAsByteArrayAsync(timeout.Token);
        }

        var byKid = new Dictionary<string, VerificationKey>(StringComparer.Ordinal);
        var all = new List<VerificationKey>();
        foreach (var jwk in JsonWebKey.ReadSet(json))
        {
            if (VerificationKey.Create(jwk) is { } key)
            {
                byKid[key.Kid] = key;
                all.Add(key);
            }
        }

        LogFetched(_logger, all.Count);
        return new KeyCache(byKid, all, now);
    }

    public void Dispose() => _fetchGate.Dispose();

    [LoggerMessage(EventId = 3001, Level = LogLevel.Information, Message = "Loaded {Count} IdP signing key(s).")]
    private static partial void LogFetched(ILogger logger, int count);

    [LoggerMessage(EventId = 3002, Level = LogLevel.Warning, Message = "Fetching the IdP JWKS failed ({Error}); cached keys, if any, stay in use.")]
    private static partial void LogFetchFailed(ILogger logger, string error);
}
