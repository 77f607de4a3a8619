using Microsoft.Extensions.Logging;

namespace TokenService.Validation.Jose;

/// <summary>Where a JWKS comes from and how long it is trusted.</summary>
public sealed record JwksSource(string Name, string? Uri, string? Path, TimeSpan RefetchInterval, TimeSpan CacheLifetime);

/// <summary>
/// Signing keys of a trusted issuer (the IdP, an SSF transmitter, our own service for resource servers) from a
/// JWKS URL or file, cached. An unknown
/// <c>kid</c> triggers at most one refetch per <see cref="JwksSource.RefetchInterval"/> (key rollover without
/// letting attackers drive fetches). When a refresh fails the cached keys keep serving.
/// </summary>
public sealed partial class JwksKeyResolver : IVerificationKeyResolver, IDisposable
{
    private const int MaxJwksBytes = 256 * 1024;

    private readonly JwksSource _options;
    private readonly IHttpClientFactory? _httpClients;
    private readonly TimeProvider _time;
    private readonly ILogger<JwksKeyResolver> _logger;
    private readonly SemaphoreSlim _fetchGate = new(1, 1);
    private volatile KeyCache? _cache;
    private DateTimeOffset _lastFetchAttempt = DateTimeOffset.MinValue;

    private sealed record KeyCache(IReadOnlyDictionary<string, VerificationKey> ByKid, IReadOnlyList<VerificationKey> All, DateTimeOffset LoadedAt);

    public JwksKeyResolver(JwksSource source, TimeProvider time, ILogger<JwksKeyResolver> logger, IHttpClientFactory? httpClients = null)
    {
        _options = source;
        _time = time;
        _logger = logger;
        _httpClients = httpClients;
    }

    public ValueTask<KeyResolution> ResolveAsync(string? kid, CancellationToken cancellationToken)
    {
        var cache = _cache;
        if (cache is not null && _time.GetUtcNow() - cache.LoadedAt < _options.CacheLifetime && Find(cache, kid) is { } key)
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
            var stale = cache is null || now - cache.LoadedAt >= _options.CacheLifetime;
            if (cache is not null && !stale && Find(cache, kid) is { } found)
            {
                return KeyResolution.Found(found);
            }

            // Unknown kid or stale cache: refetch, but no more often than the refetch interval.
            if (cache is null || now - _lastFetchAttempt >= _options.RefetchInterval)
            {
                _lastFetchAttempt = now;
                try
                {
                    cache = await FetchAsync(now, cancellationToken);
                    _cache = cache;
                }
                catch (Exception ex) when (ex is HttpRequestException or IOException or FormatException or TaskCanceledException or System.Text.Json.JsonException or UnauthorizedAccessException)
                {
                    LogFetchFailed(_logger, _options.Name, ex.GetType().Name);
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
        if (!string.IsNullOrEmpty(_options.Path))
        {
            var info = new FileInfo(_options.Path);
            if (info.Exists && info.Length > MaxJwksBytes)
            {
                throw new FormatException("The JWKS file is too large.");
            }

            json = await File.ReadAllBytesAsync(_options.Path, cancellationToken);
        }
        else
        {
            var client = _httpClients?.CreateClient("jwks") ?? throw new InvalidOperationException("No HTTP client factory.");
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(10));
            using var response = await client.GetAsync(_options.Uri, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
            response.EnsureSuccessStatusCode();
            if (response.Content.Headers.ContentLength > MaxJwksBytes)
            {
                throw new FormatException("The JWKS document is too large.");
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

        LogFetched(_logger, all.Count, _options.Name);
        return new KeyCache(byKid, all, now);
    }

    public void Dispose() => _fetchGate.Dispose();

    [LoggerMessage(EventId = 3001, Level = LogLevel.Information, Message = "Loaded {Count} signing key(s) of {Source}.")]
    private static partial void LogFetched(ILogger logger, int count, string source);

    [LoggerMessage(EventId = 3002, Level = LogLevel.Warning, Message = "Fetching the JWKS of {Source} failed ({Error}); cached keys, if any, stay in use.")]
    private static partial void LogFetchFailed(ILogger logger, string source, string error);
}
