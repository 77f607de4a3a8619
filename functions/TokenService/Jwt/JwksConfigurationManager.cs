using Microsoft.Extensions.Logging;
using Microsoft.IdentityModel.Protocols.OpenIdConnect;
using Microsoft.IdentityModel.Tokens;

namespace TokenService.Jwt;

/// <summary>Where a JWKS comes from and how long it is trusted.</summary>
public sealed record JwksSource(string Name, string? Uri, string? Path, TimeSpan RefetchInterval, TimeSpan CacheLifetime);

/// <summary>
/// The signing keys of a trusted issuer (the IdP, an SSF transmitter) from a JWKS URL or a local file, as a
/// Microsoft.IdentityModel configuration manager: the document is parsed by IdentityModel's <see cref="JsonWebKeySet"/>
/// and served as an <see cref="OpenIdConnectConfiguration"/>, so it can also be given to a
/// <see cref="TokenValidationParameters.ConfigurationManager"/>.
/// <para>
/// Why not IdentityModel's <c>ConfigurationManager&lt;T&gt;</c>: it reads the wall clock (this product injects
/// <see cref="TimeProvider"/>, and the rate limits below are tested with a fake clock), it retries a failed first fetch on
/// every call (3,000 forged tokens while the IdP is down would cause 3,000 fetches), its
/// <c>RequestRefresh</c> refreshes in the background (the first token signed with a rolled-over key would be refused),
/// it reads documents of any size, and it accepts no refetch interval under one second. The policy here: a stale cache
/// or an unknown <c>kid</c> causes at most one fetch per <see cref="JwksSource.RefetchInterval"/>, whether keys are
/// cached or not; concurrent callers share the one fetch in flight, which no caller's cancellation ends; when a fetch
/// fails the cached keys keep serving, and with none cached callers get <see cref="KeyResolution.Unavailable"/> (the
/// 503 path) until the interval has passed, without a new fetch or a new warning. A document over
/// <see cref="MaxJwksBytes"/> or with more than <see cref="MaxKeys"/> keys is a failed fetch.
/// </para>
/// </summary>
public sealed partial class JwksConfigurationManager : BaseConfigurationManager, IIssuerKeySource, IDisposable
{
    /// <summary>Largest JWKS accepted: real sets are a few KiB (Entra's, with a dozen RSA keys and x5c chains, ~10 KiB).</summary>
    public const int MaxJwksBytes = 64 * 1024;

    /// <summary>Most keys accepted in one JWKS: issuers publish a handful (current, next, previous).</summary>
    public const int MaxKeys = 100;

    private static readonly TimeSpan FetchTimeout = TimeSpan.FromSeconds(10);

    private readonly JwksSource _source;
    private readonly IHttpClientFactory? _httpClients;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _disposed = new();
    private readonly Lock _gate = new();
    private volatile KeyCache? _cache;
    private Task? _fetch;
    private DateTimeOffset _lastFetchAttempt = DateTimeOffset.MinValue;
    private volatile bool _refreshRequested;

    private sealed record KeyCache(OpenIdConnectConfiguration Configuration, IReadOnlyDictionary<string, SecurityKey[]> ByKid, SecurityKey[] Single, DateTimeOffset LoadedAt);

    public JwksConfigurationManager(JwksSource source, TimeProvider time, ILogger logger, IHttpClientFactory? httpClients = null)
    {
        _source = source;
        _time = time;
        _logger = logger;
        _httpClients = httpClients;
        MetadataAddress = source.Uri ?? source.Path;
    }

    public ValueTask<KeyResolution> ResolveAsync(string? kid, CancellationToken cancellationToken)
    {
        var cache = _cache;
        if (cache is not null && IsFresh(cache) && Find(cache, kid).Length > 0)
        {
            return ValueTask.FromResult(KeyResolution.Found);
        }

        return ResolveSlowAsync(kid, cancellationToken);
    }

    public SecurityKey[] KeysFor(string? kid) => _cache is { } cache ? Find(cache, kid) : [];

    /// <summary>The current keys as IdentityModel configuration; fetches (within the rate limit) when none or stale.</summary>
    public override async Task<BaseConfiguration> GetBaseConfigurationAsync(CancellationToken cancel)
    {
        if (_cache is not { } cache || !IsFresh(cache) || _refreshRequested)
        {
            _refreshRequested = false;
            await ResolveSlowAsync(kid: null, cancel, force: true);
            cache = _cache ?? throw new InvalidOperationException($"The JWKS of {_source.Name} cannot be obtained.");
        }

        return cache.Configuration;
    }

    /// <summary>Asks for a fetch at the next use, still at most one per refetch interval.</summary>
    public override void RequestRefresh() => _refreshRequested = true;

    private bool IsFresh(KeyCache cache) => _time.GetUtcNow() - cache.LoadedAt < _source.CacheLifetime;

    private async ValueTask<KeyResolution> ResolveSlowAsync(string? kid, CancellationToken cancellationToken, bool force = false)
    {
        Task? fetch;
        lock (_gate)
        {
            var now = _time.GetUtcNow();
            var cache = _cache;
            if (!force && cache is not null && now - cache.LoadedAt < _source.CacheLifetime && Find(cache, kid).Length > 0)
            {
                return KeyResolution.Found;
            }

            // Unknown kid, stale cache or nothing cached: join the fetch in flight, or start one if the refetch
            // interval has passed since the last attempt (successful or not); otherwise answer from what is cached.
            if (_fetch is { IsCompleted: false } running)
            {
                fetch = running;
            }
            else if (now - _lastFetchAttempt >= _source.RefetchInterval)
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

        return Find(current, kid).Length > 0 ? KeyResolution.Found : KeyResolution.Unknown;
    }

    private static SecurityKey[] Find(KeyCache cache, string? kid) =>
        kid is null ? cache.Single : cache.ByKid.GetValueOrDefault(kid) ?? [];

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
            or System.Text.Json.JsonException or UnauthorizedAccessException or InvalidOperationException or ArgumentException)
        {
            if (!_disposed.IsCancellationRequested)
            {
                LogFetchFailed(_logger, _source.Name, ex.GetType().Name);
            }
        }
    }

    private async Task<KeyCache> FetchAsync(DateTimeOffset now, CancellationToken cancellationToken)
    {
        byte[] json;
        if (!string.IsNullOrEmpty(_source.Path))
        {
            await using var file = new FileStream(_source.Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 4096, useAsync: true);
            json = await ReadBoundedAsync(file, cancellationToken);
        }
        else
        {
            var client = _httpClients?.CreateClient("jwks") ?? throw new InvalidOperationException("No HTTP client factory.");
            using var response = await client.GetAsync(_source.Uri, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
            response.EnsureSuccessStatusCode();
            if (response.Content.Headers.ContentLength > MaxJwksBytes)
            {
                throw new FormatException("The JWKS document is too large.");
            }

            // Content-Length may be absent (chunked) or wrong: the body itself is read only up to the limit.
            await using var body = await response.Content.ReadAsStreamAsync(cancellationToken);
            json = await ReadBoundedAsync(body, cancellationToken);
        }

        // RFC 8259 §8.1: JSON text is UTF-8; text that is not Unicode is a failed fetch, as is any document that is not
        // an object with a "keys" array (IdentityModel's reader would make an empty set of some of them).
        if (!JsonText.IsWellFormed(json, 8))
        {
            throw new FormatException("A JWKS document must be UTF-8 JSON text.");
        }

        // Each key is read by IdentityModel on its own: a key with a member of the wrong kind (IdentityModel refuses the
        // whole set for it) is skipped, and the others stay usable, as RFC 7517 §5 asks of keys a reader does not understand.
        var set = new JsonWebKeySet { SkipUnresolvedJsonWebKeys = true };
        using (var document = System.Text.Json.JsonDocument.Parse(json))
        {
            if (!JsonText.TryGetProperty(document.RootElement, "keys", out var keys) || keys.ValueKind != System.Text.Json.JsonValueKind.Array)
            {
                throw new FormatException("A JWKS document must be an object with a \"keys\" array.");
            }

            if (keys.GetArrayLength() > MaxKeys)
            {
                throw new FormatException($"A JWKS document may hold at most {MaxKeys} keys.");
            }

            foreach (var element in keys.EnumerateArray())
            {
                try
                {
                    set.Keys.Add(new Microsoft.IdentityModel.Tokens.JsonWebKey(element.GetRawText()));
                }
                catch (ArgumentException)
                {
                }
            }
        }

        var configuration = new OpenIdConnectConfiguration { JsonWebKeySet = set, JwksUri = _source.Uri };
        var byKid = new Dictionary<string, SecurityKey[]>(StringComparer.Ordinal);
        var usable = new List<SecurityKey>();
        foreach (var key in set.Keys)
        {
            // Only keys that can verify an algorithm we accept (no "oct", no encryption keys, RSA of 2048 bits or more).
            if (!JwsAlgorithms.IsUsableVerificationKey(key))
            {
                continue;
            }

            configuration.SigningKeys.Add(key);
            usable.Add(key);
            if (!string.IsNullOrEmpty(key.Kid))
            {
                byKid[key.Kid] = [key];
            }
        }

        LogFetched(_logger, usable.Count, _source.Name);
        return new KeyCache(configuration, byKid, usable.Count == 1 ? [usable[0]] : [], now);
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
