using System.Collections.Concurrent;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.Extensions.Logging;
using Microsoft.IdentityModel.JsonWebTokens;

namespace TokenService.Validation;

/// <summary>What introspection (or the cache) says about a validated token.</summary>
internal enum SessionStatus
{
    Active,
    Revoked,
    Unavailable,
}

/// <summary>
/// Session state and the jti deny list of one scheme's tokens, through the token service's introspection endpoint
/// (RFC 7662) with a bounded-staleness cache keyed by jti: an answer is reused for at most
/// <see cref="SessionCheckOptions.StatusCacheDuration"/> and never past the token's exp. When the status cannot be
/// learned and nothing is cached, the answer is <see cref="SessionStatus.Unavailable"/> (fail closed). A warm check makes
/// no network call and completes synchronously.
/// </summary>
internal sealed partial class SessionStatusChecker(SessionCheckOptions options, ILogger logger)
{
    private readonly ConcurrentDictionary<string, StatusEntry> _status = new(StringComparer.Ordinal);
    private readonly string _basic = Convert.ToBase64String(Encoding.UTF8.GetBytes(
        Uri.EscapeDataString(options.ClientId ?? string.Empty) + ":" + Uri.EscapeDataString(options.ClientSecret ?? string.Empty)));

    private readonly record struct StatusEntry(bool Active, DateTimeOffset Until);

    public ValueTask<SessionStatus> CheckAsync(JsonWebToken token, JwtBearerOptions bearer, CancellationToken cancellationToken)
    {
        var time = bearer.TimeProvider ?? TimeProvider.System;
        if (string.IsNullOrEmpty(token.Id))
        {
            // Our access tokens always carry a jti (docs/api.md, "Access token"); without one, no status can be cached or looked up.
            return ValueTask.FromResult(SessionStatus.Revoked);
        }

        if (_status.TryGetValue(token.Id, out var entry) && time.GetUtcNow() < entry.Until)
        {
            return ValueTask.FromResult(entry.Active ? SessionStatus.Active : SessionStatus.Revoked);
        }

        return IntrospectAsync(token, bearer, time, cancellationToken);
    }

    private async ValueTask<SessionStatus> IntrospectAsync(JsonWebToken token, JwtBearerOptions bearer, TimeProvider time, CancellationToken cancellationToken)
    {
        bool active;
        try
        {
            var endpoint = options.IntrospectionEndpoint?.AbsoluteUri;
            if (endpoint is null && bearer.ConfigurationManager is { } manager)
            {
                // The discovery document JwtBearer has cached (RFC 8414 introspection_endpoint).
                endpoint = (await manager.GetConfigurationAsync(cancellationToken)).IntrospectionEndpoint;
            }

            if (string.IsNullOrEmpty(endpoint))
            {
                LogStatusUnavailable(logger, 0);
                return SessionStatus.Unavailable;
            }

            using var request = new HttpRequestMessage(HttpMethod.Post, endpoint)
            {
                Content = new FormUrlEncodedContent([new("token", token.EncodedToken), new("token_type_hint", "access_token")]),
            };
            request.Headers.Authorization = new AuthenticationHeaderValue("Basic", _basic);
            using var response = await bearer.Backchannel.SendAsync(request, cancellationToken);
            if (!response.IsSuccessStatusCode)
            {
                LogStatusUnavailable(logger, (int)response.StatusCode);
                return SessionStatus.Unavailable;
            }

            using var json = JsonDocument.Parse(await response.Content.ReadAsByteArrayAsync(cancellationToken));
            active = json.RootElement.ValueKind == JsonValueKind.Object
                && json.RootElement.TryGetProperty("active", out var a) && a.ValueKind == JsonValueKind.True;
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException or JsonException or InvalidOperationException
            && !cancellationToken.IsCancellationRequested)
        {
            LogStatusUnavailable(logger, 0);
            return SessionStatus.Unavailable;
        }

        var now = time.GetUtcNow();
        var until = now + options.StatusCacheDuration;
        var exp = new DateTimeOffset(token.ValidTo, TimeSpan.Zero);
        if (until > exp)
        {
            until = exp;
        }

        if (_status.Count >= options.MaxStatusCacheEntries)
        {
            foreach (var (key, value) in _status)
            {
                if (value.Until <= now)
                {
                    _status.TryRemove(key, out _);
                }
            }
        }

        if (_status.Count < options.MaxStatusCacheEntries)
        {
            _status[token.Id] = new StatusEntry(active, until);
        }

        return active ? SessionStatus.Active : SessionStatus.Revoked;
    }

    [LoggerMessage(EventId = 7001, Level = LogLevel.Warning, Message = "Token status unavailable (HTTP {Status}); failing closed for tokens without a cached status.")]
    private static partial void LogStatusUnavailable(ILogger logger, int status);
}
