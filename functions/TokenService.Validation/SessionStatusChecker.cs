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
/// (RFC 7662) with a cache keyed by jti. An answer is reused for at most <see cref="SessionCheckOptions.StatusCacheDuration"/>
/// from when it was learned and never past the token's exp; with the Shared Signals receiver on
/// (<see cref="SharedSignalsState"/>), a session revoked by an event is refused at once, cached or not, and while the
/// stream is healthy an answer learned since it became healthy is reused until the token's exp. When the status cannot be
/// learned and nothing is cached, the answer is <see cref="SessionStatus.Unavailable"/> (fail closed). A warm check makes
/// no network call and completes synchronously.
/// </summary>
internal sealed partial class SessionStatusChecker(SessionCheckOptions options, SharedSignalsState signals, ILogger logger)
{
    private readonly ConcurrentDictionary<string, StatusEntry> _status = new(StringComparer.Ordinal);
    private readonly string _basic = BasicCredentials(options);

    /// <summary>
    /// One cached answer: when it was learned (not until when it holds: that depends on the stream's health when it is
    /// read), the token's exp and its session (the <c>sid</c> claim; null for a token without one, which no event can
    /// name, so it is never trusted beyond StatusCacheDuration).
    /// </summary>
    private readonly record struct StatusEntry(bool Active, DateTimeOffset LearnedAt, DateTimeOffset Expires, string? SessionId);

    /// <summary>HTTP Basic credentials of the resource-server client (RFC 6749 §2.3.1: each part form-encoded first).</summary>
    public static string BasicCredentials(SessionCheckOptions options) => Convert.ToBase64String(Encoding.UTF8.GetBytes(
        Uri.EscapeDataString(options.ClientId ?? string.Empty) + ":" + Uri.EscapeDataString(options.ClientSecret ?? string.Empty)));

    public ValueTask<SessionStatus> CheckAsync(JsonWebToken token, JwtBearerOptions bearer, CancellationToken cancellationToken)
    {
        var time = bearer.TimeProvider ?? TimeProvider.System;
        if (string.IsNullOrEmpty(token.Id))
        {
            // Our access tokens always carry a jti (docs/api.md, "Access token"); without one, no status can be cached or looked up.
            return ValueTask.FromResult(SessionStatus.Revoked);
        }

        var now = time.GetUtcNow();
        if (signals.Enabled && SessionIdOf(token) is { } sid && signals.IsSessionRevoked(sid, now))
        {
            // Revoked by a session-revoked event (CAEP 1.0 §3.1): whatever the cache or introspection said before.
            return ValueTask.FromResult(SessionStatus.Revoked);
        }

        if (signals.Enabled && (signals.IsTokenRevoked(token.Id, now) || (token.Kid is { Length: > 0 } kid && signals.IsKeyRevoked(kid, now))))
        {
            // Revoked on its own (the service's access-token-revoked event), or signed with a key the operator revoked.
            return ValueTask.FromResult(SessionStatus.Revoked);
        }

        if (_status.TryGetValue(token.Id, out var entry) && now < ValidUntil(entry, now))
        {
            return ValueTask.FromResult(entry.Active ? SessionStatus.Active : SessionStatus.Revoked);
        }

        if (IssuedWhileHealthy(token, bearer, now))
        {
            // Nothing to ask: the session was live when the token was issued (the service issues none for an ended session
            // or a denied jti), and every change since would have come as an event, none of which names it.
            Remember(token, active: true, now);
            return ValueTask.FromResult(SessionStatus.Active);
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
        var sessionId = SessionIdOf(token);
        if (signals.Enabled && sessionId is not null && signals.IsSessionRevoked(sessionId, now))
        {
            // The event arrived while introspection was on its way: its answer may predate the revocation.
            active = false;
        }

        Remember(token, active, now);
        return active ? SessionStatus.Active : SessionStatus.Revoked;
    }

    /// <summary>Caches <paramref name="token"/>'s status as learned at <paramref name="now"/>, within the cache's bound.</summary>
    private void Remember(JsonWebToken token, bool active, DateTimeOffset now)
    {
        if (_status.Count >= options.MaxStatusCacheEntries)
        {
            foreach (var (key, value) in _status)
            {
                if (ValidUntil(value, now) <= now)
                {
                    _status.TryRemove(key, out _);
                }
            }
        }

        if (_status.Count < options.MaxStatusCacheEntries)
        {
            _status[token.Id] = new StatusEntry(active, now, new DateTimeOffset(token.ValidTo, TimeSpan.Zero), SessionIdOf(token));
        }
    }

    /// <summary>
    /// Whether <paramref name="token"/> was issued while the stream was healthy, and has been since, by a stream that tells
    /// of single access-token revocations too: then every end of its validity short of its <c>exp</c> (its session ended,
    /// its jti revoked, its signing key revoked) comes as an event, and none has. Issued means its <c>iat</c>, the token
    /// service's clock, held against this API's by the scheme's clock skew. A token without <c>sid</c> or <c>iat</c> is
    /// introspected as before.
    /// </summary>
    private bool IssuedWhileHealthy(JsonWebToken token, JwtBearerOptions bearer, DateTimeOffset now)
    {
        if (!signals.Enabled || !signals.DeliversTokenRevocations || SessionIdOf(token) is null
            || !token.TryGetPayloadValue<long>("iat", out var iat) || signals.HealthySince(now) is not { } since)
        {
            return false;
        }

        return DateTimeOffset.FromUnixTimeSeconds(Math.Clamp(iat, 0, 253402300799)) - bearer.TokenValidationParameters.ClockSkew >= since;
    }

    /// <summary>
    /// Until when <paramref name="entry"/> may be reused, computed when it is read: to the token's exp if the stream is
    /// healthy now, has been since before the entry was learned (no gap since) and could name the token's session;
    /// otherwise StatusCacheDuration from when it was learned (today's bounded staleness), never past exp.
    /// </summary>
    private DateTimeOffset ValidUntil(StatusEntry entry, DateTimeOffset now)
    {
        var until = entry.LearnedAt + options.StatusCacheDuration;
        if (signals.Enabled && entry.SessionId is not null && signals.HealthySince(now) is { } since && entry.LearnedAt >= since)
        {
            until = entry.Expires;
        }

        return until < entry.Expires ? until : entry.Expires;
    }

    private static string? SessionIdOf(JsonWebToken token) =>
        token.TryGetPayloadValue<string>("sid", out var sid) && !string.IsNullOrEmpty(sid) ? sid : null;

    [LoggerMessage(EventId = 7001, Level = LogLevel.Warning, Message = "Token status unavailable (HTTP {Status}); failing closed for tokens without a cached status.")]
    private static partial void LogStatusUnavailable(ILogger logger, int status);
}
