using Microsoft.Extensions.Logging;

namespace TokenService.Validation.Jose;

/// <summary>Where a JWKS comes from and how long it is trusted.</summary>
public sealed record JwksSource(string Name, string? Uri, string? Path, TimeSpan RefetchInterval, TimeSpan CacheLifetime);

/// <summary>
/// Signing keys of a trusted issuer (the IdP, an SSF transmitter, our own service for resource servers) from a
/// JWKS URL or file, cached. A stale cache or an unknown <c>kid</c> causes at most one fetch per
/// <see cref="JwksSource.RefetchInterval"/>, whether keys are cached or not (key rollover without letting
/// attackers drive fetches: forged tokens with made-up kids, or any token while the issuer's JWKS is down, cost
/// no outbound request beyond that one). Concurrent callers share the one fetch in flight, which no caller's
/// cancellation ends. When a fetch fails the cached keys keep serving; with none cached, callers get
/// <see cref="KeyResolution.Unavailable"/> (the 503 path) until the interval has passed, without a new fetch or a
/// new warning. A document over <see cref="MaxJwksBytes"/> or with more than <see cref="MaxKeys"/> keys is a
/// failed fetch.
/// </summary>
public sealed partial class JwksKeyResolver : IVerificationKeyResolver, IDisposable
{
    /// <summary>Largest JWKS accepted: real sets are a few KiB (Entra's, with a dozen RSA keys and x5c chains, ~10 KiB).</summary>
    public const int MaxJwksBytes = 64 * 1024;

    /// <summary>Most keys accepted in one JWKS: issuers publish a handful (current, next, previous).</summary>
    public const int MaxKeys = 100;

    private static readonly TimeSpan FetchTimeout = TimeSpan.FromSeconds(10);

    private readonly JwksSource _options;
    private readonly IHttpClientFactory? _httpClients;
    private readonly TimeProvider _time;
    private readonly ILogger<JwksKeyResolver> _logger;
    private readonly CancellationTokenSource _disposed = new();
    private readonly Lock _gate = new();
    private volatile KeyCache? _cache;
    private Task? _fetch;
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
        Task? fetch;
        lock (_gate)
        {
            var now = _time.GetUtcNow();
            var cache = _cache;
            if (cache is not null && now - cache.LoadedAt < _options.CacheLifetime && Find(cache, kid) is { } found)
            {
                return KeyResolution.Found(found);
            }

            // Unknown kid, stale cache or nothing cached: join the fetch in flight, or start one if the refetch
            // interval has passed since the last attempt (successful or not); otherwise answer from what is cached.
            if (_fetch is { IsCompleted: false } running)
            {
                fetch = running;
            }
            else if (now - _lastFetchAttempt >= _options.RefetchInterval)
            {
                _lastFetchAttempt = now;
                fetch = _fetch = Task.Run(() => FetchAndStoreAsync(now));
            }
            else
            {
                fetch = null;
            }
        }

        if (fetch is not null)
        {
            // This caller may give up (its request ended or its budget ran out); the fetch goes on for the others.
            await fetch.WaitAsync(cancellationToken);
        }

        var current = _cache;
        if (current is null)
        {
            return KeyResolution.Unavailable;
        }

        return Find(current, kid) is { } key ? KeyResolution.Found(key) : KeyResolution.Unknown;
    }

    private static VerificationKey? Find(KeyCache cache, string? kid) =>
        kid is null
            ? (cache.All.Count == 1 ? cache.All[0] : null)
            : cache.ByKid.GetValueOrDefault(kid);

    /// <summary>One fetch, on its own timeout; never throws (a failure is logged once and leaves the cache as it was).</summary>
    private async Task FetchAndStoreAsync(DateTimeOffset now)
    {
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_disposed.Token);
            timeout.CancelAfter(FetchTimeout);
            _cache = await FetchAsync(now, timeout.Token);
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException or FormatException or OperationCanceledException
            or System.Text.Json.JsonException or UnauthorizedAccessException or InvalidOperationException)
        {
            if (!_disposed.IsCancellationRequested)
            {
                LogFetchFailed(_logger, _options.Name, ex.GetType().Name);
            }
        }
    }

    private async Task<KeyCache> FetchAsync(DateTimeOffset now, CancellationToken cancellationToken)
    {
        byte[] json;
        if (!string.IsNullOrEmpty(_options.Path))
        {
            await using var file = new FileStream(_options.Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 4096, useAsync: true);
            json = await ReadBoundedAsync(file, cancellationToken);
        }
        else
        {
            var client = _httpClients?.CreateClient("jwks") ?? throw new InvalidOperationException("No HTTP client factory.");
            using var response = await client.GetAsync(_options.Uri, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
            response.EnsureSuccessStatusCode();
            if (response.Content.Headers.ContentLength > MaxJwksBytes)
            {
                throw new FormatException("The JWKS document is too large.");
            }

            // Content-Length may be absent (chunked) or wrong: the body itself is read only up to the limit.
            await using var body = await response.Content.ReadAsStreamAsync(cancellationToken);
            json = await ReadBoundedAsync(body, cancellationToken);
        }

        var byKid = new Dictionary<string, VerificationKey>(StringComparer.Ordinal);
        var all = new List<VerificationKey>();
        foreach (var jwk in JsonWebKey.ReadSet(json, MaxKeys))
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

    /// <summary>Reads at most <see cref="MaxJwksBytes"/>; one byte more makes the document too large.</summary>
    private static async Task<byte[]> ReadBoundedAsync(Stream stream, CancellationToken cancellationToken)
    {
        var buffer = new byte[MaxJwksBytes + 1];
        var length = 0;
        int read;
        while (length < buffer.Length && (read = await stream.ReadAsync(buffer.AsMemory(length), cancellationToken)) > 0)
        {
            length += read;
        }

        if (length > MaxJwksBytes)
        {
            throw new FormatException("The JWKS document is too large.");
        }

        return buffer.AsSpan(0, length).ToArray();
    }

    public void Dispose()
    {
        _disposed.Cancel();
        _disposed.Dispose();
    }

    [LoggerMessage(EventId = 3001, Level = LogLevel.Information, Message = "Loaded {Count} signing key(s) of {Source}.")]
    private static partial void LogFetched(ILogger logger, int count, string source);

    [LoggerMessage(EventId = 3002, Level = LogLevel.Warning, Message = "Fetching the JWKS of {Source} failed ({Error}); cached keys, if any, stay in use, and no new fetch starts within the refetch interval.")]
    private static partial void LogFetchFailed(ILogger logger, string source, string error);
}
