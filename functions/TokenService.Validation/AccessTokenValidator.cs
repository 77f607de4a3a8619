using System.Collections.Concurrent;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using TokenService.Validation.Jose;

namespace TokenService.Validation;

/// <summary>
/// Validates the token service's access tokens for a resource server: RFC 9068 / RFC 8725 checks against keys from
/// the service's JWKS (found through discovery, cached, one rate-limited refetch on an unknown kid, cached keys kept
/// when the service is down), then session state and the jti deny list through introspection with a
/// bounded-staleness cache keyed by jti. Fails closed when the status cannot be learned and the cache is cold.
/// A warm validation makes no network call.
/// </summary>
public sealed partial class AccessTokenValidator : IDisposable
{
    private readonly AccessTokenValidationOptions _options;
    private readonly HttpMessageHandler _handler;
    private readonly bool _ownsHandler;
    private readonly HttpClient _http;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly JwtValidationOptions _jwt;
    private readonly ConcurrentDictionary<string, StatusEntry> _status = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _discoveryGate = new(1, 1);
    private volatile JwksKeyResolver? _keys;
    private string? _introspectionEndpoint;

    private readonly record struct StatusEntry(bool Active, DateTimeOffset Until);

    public AccessTokenValidator(AccessTokenValidationOptions options, ILogger? logger = null)
    {
        if (!Uri.TryCreate(options.Authority, UriKind.Absolute, out _))
        {
            throw new ArgumentException("Authority must be the token service's issuer URL.", nameof(options));
        }

        if (string.IsNullOrWhiteSpace(options.Audience))
        {
            throw new ArgumentException("Audience is required: tokens are accepted only when they name this API.", nameof(options));
        }

        if (options.CheckTokenStatus && (string.IsNullOrEmpty(options.ClientId) || string.IsNullOrEmpty(options.ClientSecret)))
        {
            throw new ArgumentException("ClientId and ClientSecret (a resource_server client) are required for status checks.", nameof(options));
        }

        _options = options;
        _time = options.TimeProvider ?? TimeProvider.System;
        _logger = logger ?? NullLogger.Instance;
        _handler = options.BackchannelHandler ?? new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5) };
        _ownsHandler = options.BackchannelHandler is null;
        _http = new HttpClient(_handler, disposeHandler: false);
        _http.Timeout = TimeSpan.FromSeconds(10);
        _jwt = new JwtValidationOptions
        {
            AllowedAlgorithms = JwsAlgorithms.Signing,
            Issuer = options.Authority,
            Audiences = [options.Audience],
            RequiredType = "at+jwt",
            RequireKeyId = true,
            ClockSkew = options.ClockSkew > TimeSpan.FromSeconds(60) ? TimeSpan.FromSeconds(60) : options.ClockSkew,
            MaxTokenLength = 8 * 1024,
        };
    }

    public ValueTask<AccessTokenValidationResult> ValidateAsync(string? token, CancellationToken cancellationToken = default)
    {
        var keys = _keys;
        if (keys is null)
        {
            return ValidateColdAsync(token, cancellationToken);
        }

        var validation = JwtValidator.ValidateAsync(token, _jwt, keys, _time.GetUtcNow(), cancellationToken);
        return validation.IsCompletedSuccessfully ? CheckStatus(validation.Result, token!, cancellationToken) : CompleteAsync(validation, token!, cancellationToken);
    }

    private async ValueTask<AccessTokenValidationResult> ValidateColdAsync(string? token, CancellationToken cancellationToken)
    {
        if (!await EnsureDiscoveryAsync(cancellationToken))
        {
            return new(AccessTokenError.Unavailable, "The token service's metadata cannot be fetched.", null, JwtValidationError.KeysUnavailable);
        }

        return await ValidateAsync(token, cancellationToken);
    }

    private async ValueTask<AccessTokenValidationResult> CompleteAsync(ValueTask<JwtValidationResult> validation, string token, CancellationToken cancellationToken) =>
        await CheckStatus(await validation, token, cancellationToken);

    private ValueTask<AccessTokenValidationResult> CheckStatus(JwtValidationResult result, string token, CancellationToken cancellationToken)
    {
        if (!result.IsValid)
        {
            return ValueTask.FromResult(result.Error == JwtValidationError.KeysUnavailable
                ? new AccessTokenValidationResult(AccessTokenError.Unavailable, result.Description, null, result.Error)
                : new AccessTokenValidationResult(AccessTokenError.InvalidToken, result.Description, null, result.Error));
        }

        var payload = result.Payload!;
        if (!_options.CheckTokenStatus)
        {
            return ValueTask.FromResult(new AccessTokenValidationResult(AccessTokenError.None, null, payload));
        }

        if (payload.JwtId is not { } jti)
        {
            return ValueTask.FromResult(new AccessTokenValidationResult(AccessTokenError.InvalidToken, "The token has no jti.", null));
        }

        if (_status.TryGetValue(jti, out var entry) && _time.GetUtcNow() < entry.Until)
        {
            return ValueTask.FromResult(entry.Active
                ? new AccessTokenValidationResult(AccessTokenError.None, null, payload)
                : new AccessTokenValidationResult(AccessTokenError.Revoked, "The token has been revoked.", null));
        }

        return IntrospectAsync(jti, payload, token, cancellationToken);
    }

    private async ValueTask<AccessTokenValidationResult> IntrospectAsync(string jti, JwtPayload payload, string token, CancellationToken cancellationToken)
    {
        bool active;
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, _introspectionEndpoint)
            {
                Content = new FormUrlEncodedContent([new("token", token), new("token_type_hint", "access_token")]),
            };
            request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(
                Uri.EscapeDataString(_options.ClientId!) + ":" + Uri.EscapeDataString(_options.ClientSecret!))));
            using var response = await _http.SendAsync(request, cancellationToken);
            if (!response.IsSuccessStatusCode)
            {
                LogStatusUnavailable(_logger, (int)response.StatusCode);
                return new(AccessTokenError.Unavailable, "The token's status cannot be learned right now.", null);
            }

            using var json = JsonDocument.Parse(await response.Content.ReadAsByteArrayAsync(cancellationToken));
            active = json.RootElement.TryGetProperty("active", out var a) && a.ValueKind == JsonValueKind.True;
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException or JsonException && !cancellationToken.IsCancellationRequested)
        {
            LogStatusUnavailable(_logger, 0);
            return new(AccessTokenError.Unavailable, "The token's status cannot be learned right now.", null);
        }

        var now = _time.GetUtcNow();
        var until = now + _options.StatusCacheDuration;
        var exp = DateTimeOffset.FromUnixTimeSeconds(payload.ExpiresAt!.Value);
        if (until > exp)
        {
            until = exp;
        }

        if (_status.Count >= _options.MaxStatusCacheEntries)
        {
            foreach (var (key, value) in _status)
            {
                if (value.Until <= now)
                {
                    _status.TryRemove(key, out _);
                }
            }
        }

        if (_status.Count < _options.MaxStatusCacheEntries)
        {
            _status[jti] = new StatusEntry(active, until);
        }

        return active ? new(AccessTokenError.None, null, payload) : new(AccessTokenError.Revoked, "The token has been revoked.", null);
    }

    private async Task<bool> EnsureDiscoveryAsync(CancellationToken cancellationToken)
    {
        if (_keys is not null)
        {
            return true;
        }

        await _discoveryGate.WaitAsync(cancellationToken);
        try
        {
            if (_keys is not null)
            {
                return true;
            }

            var metadataUrl = _options.Authority.TrimEnd('/') + "/.well-known/openid-configuration";
            using var json = JsonDocument.Parse(await _http.GetByteArrayAsync(metadataUrl, cancellationToken));
            var issuer = json.RootElement.GetProperty("issuer").GetString();
            if (!string.Equals(issuer, _options.Authority, StringComparison.Ordinal))
            {
                // RFC 8414 §3.3: the metadata's issuer must be the one we asked about.
                LogIssuerMismatch(_logger);
                return false;
            }

            _introspectionEndpoint = json.RootElement.GetProperty("introspection_endpoint").GetString();
            var jwksUri = json.RootElement.GetProperty("jwks_uri").GetString();
            _keys = new JwksKeyResolver(
                new JwksSource("token-service", jwksUri, null, _options.KeyRefetchInterval, _options.KeyCacheLifetime),
                _time, NullLogger<JwksKeyResolver>.Instance, new SharedHandlerClientFactory(_handler));
            return true;
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException or JsonException or KeyNotFoundException or InvalidOperationException && !cancellationToken.IsCancellationRequested)
        {
            LogDiscoveryFailed(_logger);
            return false;
        }
        finally
        {
            _discoveryGate.Release();
        }
    }

    private sealed class SharedHandlerClientFactory(HttpMessageHandler handler) : IHttpClientFactory
    {
        public HttpClient CreateClient(string name) => new(handler, disposeHandler: false);
    }

    public void Dispose()
    {
        _http.Dispose();
        if (_ownsHandler)
        {
            _handler.Dispose();
        }

        _keys?.Dispose();
        _discoveryGate.Dispose();
    }

    [LoggerMessage(EventId = 7001, Level = LogLevel.Warning, Message = "Token status unavailable (HTTP {Status}); failing closed for tokens without a cached status.")]
    private static partial void LogStatusUnavailable(ILogger logger, int status);

    [LoggerMessage(EventId = 7002, Level = LogLevel.Warning, Message = "The token service's discovery document could not be fetched.")]
    private static partial void LogDiscoveryFailed(ILogger logger);

    [LoggerMessage(EventId = 7003, Level = LogLevel.Error, Message = "The token service's discovery document names another issuer; refusing it.")]
    private static partial void LogIssuerMismatch(ILogger logger);
}
