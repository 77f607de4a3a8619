using System.Buffers;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TokenService.Jose;

namespace TokenService.Validation;

/// <summary>
/// The Shared Signals receiver of one JwtBearer scheme (docs/shared-signals.md, "The receiver"). At start, in the
/// background, it reads the token service's SSF metadata (SSF 1.0 §7.1), adopts the stream described
/// <see cref="SharedSignalsReceiverOptions.StreamDescription"/> or creates one (§8.1.1), then every
/// <see cref="SharedSignalsReceiverOptions.VerificationInterval"/> asks for a verification event (§8.1.4.2) and, in poll
/// mode, polls every <see cref="SharedSignalsReceiverOptions.PollInterval"/> (RFC 8936); in push mode the token service
/// POSTs to <see cref="HandlePushAsync"/> (RFC 8935). Each SET is verified (<see cref="SecurityEventTokenValidator"/>),
/// acted on once per <c>jti</c>, and only then acknowledged. A token service that is down never stops the API: the
/// set-up is retried on a back-off while the status cache stays on bounded staleness (<see cref="SharedSignalsState"/>).
/// Everything runs on the scheme's <c>JwtBearerOptions.TimeProvider</c>.
/// </summary>
internal sealed partial class SharedSignalsReceiver : IHostedService, IDisposable
{
    internal const string PushMediaType = "application/secevent+jwt";
    private const string JsonMediaType = "application/json";
    private const int MaxEventsPerPoll = 100;

    /// <summary>Poll rounds in one cycle while the transmitter says more events are available (RFC 8936 §2.3 moreAvailable).</summary>
    private const int MaxPollRounds = 10;

    /// <summary>jtis remembered to drop duplicates (RFC 8935 §2.2: a SET may be delivered again; same jti, same SET).</summary>
    private const int MaxSeenJtis = 10_000;

    /// <summary>Verification states asked for and not yet answered.</summary>
    private const int MaxPendingVerifications = 16;

    private const int MaxPushBytes = 64 * 1024;

    private static readonly TimeSpan InitialSetUpBackoff = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan MaxSetUpBackoff = TimeSpan.FromMinutes(5);

    private readonly string _scheme;
    private readonly SessionCheckOptions _check;
    private readonly SharedSignalsState _state;
    private readonly IOptionsMonitor<JwtBearerOptions> _bearers;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Lock _gate = new();
    private readonly Dictionary<string, DateTimeOffset> _pendingVerifications = new(StringComparer.Ordinal);
    private readonly HashSet<string> _seen = new(StringComparer.Ordinal);
    private readonly Queue<string> _seenOrder = new();
    private readonly List<string> _acknowledge = [];
    private readonly Dictionary<string, SetCheck> _setErrors = new(StringComparer.Ordinal);
    private readonly List<(Func<bool> Condition, TaskCompletionSource Done)> _waiters = [];
    private readonly byte[] _pushAuthorization;
    private JwtBearerOptions? _bearer;
    private SecurityEventTokenValidator? _validator;
    private volatile StreamInfo? _stream;
    private Task? _loop;

    public SharedSignalsReceiver(string scheme, SessionCheckOptions check, SharedSignalsState state, IOptionsMonitor<JwtBearerOptions> bearers, ILogger logger)
    {
        (_scheme, _check, _state, _bearers, _logger) = (scheme, check, state, bearers, logger);

        // RFC 8935 §4.1 / SSF 1.0 §8.1.1 authorization_header: a secret of this instance, made at start and given to the
        // transmitter with the stream's delivery; only pushes that carry it are accepted.
        PushAuthorization = "Bearer " + Base64UrlEncoding.Encode(RandomNumberGenerator.GetBytes(32));
        _pushAuthorization = Encoding.ASCII.GetBytes(PushAuthorization);
    }

    private sealed record StreamInfo(string StreamId, Uri? PollEndpoint, Uri VerificationEndpoint, Uri ConfigurationEndpoint);

    /// <summary>
    /// The stream's count of events the token service will never deliver (dropped by its outbox bound, or whose queuing
    /// failed), from the stream configuration's <see cref="EventsDroppedMember"/>; -1 when the token service does not say.
    /// </summary>
    private long _eventsDropped = -1;

    /// <summary>The Authorization header the transmitter must send with each push.</summary>
    internal string PushAuthorization { get; }

    /// <summary>The adopted or created stream's id; null until the set-up succeeded.</summary>
    internal string? StreamId => _stream?.StreamId;

    /// <summary>When the last background cycle (set-up, verification request, poll) started, on the scheme's clock.</summary>
    internal DateTimeOffset? LastCycleStartedAt { get; private set; }

    internal int AcceptedSets;
    internal int DuplicateSets;

    internal SharedSignalsState State => _state;

    internal bool IsHealthy => _state.IsHealthy(Time.GetUtcNow());

    private JwtBearerOptions Bearer => _bearer ??= _bearers.Get(_scheme);

    private TimeProvider Time => Bearer.TimeProvider ?? TimeProvider.System;

    private SharedSignalsReceiverOptions Options => _check.SharedSignals;

    /// <summary>The issuer the metadata and every SET must name: the scheme's issuer (the Authority, as for access tokens).</summary>
    private string Issuer => Bearer.TokenValidationParameters.ValidIssuer ?? Bearer.Authority ?? string.Empty;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (!_state.Enabled || _loop is not null)
        {
            return Task.CompletedTask;
        }

        // Never awaited here: the API starts whether or not the token service answers (it stays on bounded staleness).
        _loop = Task.Run(() => RunAsync(_stopping.Token), CancellationToken.None);
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync();
        if (_loop is { } loop)
        {
            await loop.WaitAsync(cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    public void Dispose() => _stopping.Dispose();

    /// <summary>Completes once <paramref name="condition"/> holds after a cycle or a SET (for tests: no clock is waited on).</summary>
    internal Task WaitAsync(Func<bool> condition)
    {
        lock (_waiters)
        {
            if (condition())
            {
                return Task.CompletedTask;
            }

            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((condition, done));
            return done.Task;
        }
    }

    private void Notify()
    {
        lock (_waiters)
        {
            for (var i = _waiters.Count - 1; i >= 0; i--)
            {
                if (_waiters[i].Condition())
                {
                    _waiters[i].Done.TrySetResult();
                    _waiters.RemoveAt(i);
                }
            }
        }
    }

    private async Task RunAsync(CancellationToken stopping)
    {
        var backoff = InitialSetUpBackoff;
        var nextVerification = DateTimeOffset.MinValue;
        var nextPoll = DateTimeOffset.MinValue;
        while (!stopping.IsCancellationRequested)
        {
            var now = Time.GetUtcNow();
            var due = DateTimeOffset.MaxValue;
            try
            {
                if (_stream is null)
                {
                    var outcome = await SetUpAsync(stopping);
                    if (outcome == SetUpOutcome.Ready)
                    {
                        backoff = InitialSetUpBackoff;
                        nextVerification = nextPoll = now;
                    }
                    else
                    {
                        // A 409 will not go away by itself soon (another instance holds the one stream): the longest wait.
                        due = now + (outcome == SetUpOutcome.Conflict ? MaxSetUpBackoff : backoff);
                        backoff = backoff * 2 < MaxSetUpBackoff ? backoff * 2 : MaxSetUpBackoff;
                    }
                }

                if (_stream is not null)
                {
                    if (now >= nextVerification)
                    {
                        await RequestVerificationAsync(now, stopping);
                        nextVerification = now + Options.VerificationInterval;
                    }

                    if (Options.Delivery == SharedSignalsDelivery.Poll && now >= nextPoll)
                    {
                        await PollAsync(stopping);
                        nextPoll = now + Options.PollInterval;
                    }

                    due = Options.Delivery == SharedSignalsDelivery.Poll && nextPoll < nextVerification ? nextPoll : nextVerification;
                }

                // A stream lost in this cycle (404) is set up again in the next one.
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex) when (!stopping.IsCancellationRequested)
            {
                // Whatever went wrong in one cycle must not end the receiver: the stream simply ages into unhealthy, and
                // the next cycle tries again.
                LogCycleFailed(_logger, ex);
                due = now + InitialSetUpBackoff;
            }
            finally
            {
                LastCycleStartedAt = now;
                Notify();
            }

            try
            {
                await WaitUntilAsync(due, stopping);
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                return;
            }
        }
    }

    /// <summary>
    /// Waits on the scheme's clock until <paramref name="due"/>. The clock is read again once the timer is made: a clock
    /// that passed <paramref name="due"/> meanwhile (a test clock moved between the two) must not wait a whole timer
    /// counted from the later time.
    /// </summary>
    private async Task WaitUntilAsync(DateTimeOffset due, CancellationToken stopping)
    {
        var time = Time;
        while (due - time.GetUtcNow() is { Ticks: > 0 } wait)
        {
            using var timer = CancellationTokenSource.CreateLinkedTokenSource(stopping);
            var delay = Task.Delay(wait, time, timer.Token);
            if (time.GetUtcNow() >= due)
            {
                await timer.CancelAsync();
                return;
            }

            await delay;
        }
    }

    private enum SetUpOutcome
    {
        Ready,
        Failed,
        Conflict,
    }

    /// <summary>SSF 1.0 §7.1 metadata, then the stream adopted (§8.1.1.3 PATCH) or created (§8.1.1.1 POST).</summary>
    private async Task<SetUpOutcome> SetUpAsync(CancellationToken stopping)
    {
        var authority = Bearer.Authority?.TrimEnd('/');
        if (string.IsNullOrEmpty(authority))
        {
            LogSetUpFailed(_logger, "the scheme has no Authority", 0);
            return SetUpOutcome.Failed;
        }

        var (status, metadata) = await SendAsync(HttpMethod.Get, new Uri(authority + "/.well-known/ssf-configuration"), null, authenticate: false, stopping);
        if (status != HttpStatusCode.OK || metadata.ValueKind != JsonValueKind.Object)
        {
            LogSetUpFailed(_logger, "the SSF metadata could not be read", (int)status);
            return SetUpOutcome.Failed;
        }

        // SSF 1.0 §7.2: the issuer in the metadata MUST be the one the receiver expects, and the SETs' iss is it too.
        if (String(metadata, "issuer") != Issuer)
        {
            LogSetUpFailed(_logger, "the SSF metadata names another issuer", (int)status);
            return SetUpOutcome.Failed;
        }

        var method = Options.Delivery == SharedSignalsDelivery.Push ? "urn:ietf:rfc:8935" : "urn:ietf:rfc:8936";
        if (AbsoluteUri(metadata, "configuration_endpoint") is not { } configuration || AbsoluteUri(metadata, "verification_endpoint") is not { } verification
            || !metadata.TryGetProperty("delivery_methods_supported", out var methods) || methods.ValueKind != JsonValueKind.Array
            || !methods.EnumerateArray().Any(m => m.ValueKind == JsonValueKind.String && m.GetString() == method))
        {
            LogSetUpFailed(_logger, "the SSF metadata lacks the stream endpoints or the delivery method", (int)status);
            return SetUpOutcome.Failed;
        }

        // §8.1.1.2: GET without stream_id lists this receiver's streams; ours is the one with our description.
        (status, var list) = await SendAsync(HttpMethod.Get, configuration, null, authenticate: true, stopping);
        if (status != HttpStatusCode.OK || list.ValueKind is not (JsonValueKind.Array or JsonValueKind.Object))
        {
            LogSetUpFailed(_logger, "the receiver's streams could not be listed", (int)status);
            return SetUpOutcome.Failed;
        }

        var existing = (list.ValueKind == JsonValueKind.Array ? list.EnumerateArray().ToList() : [list])
            .Where(s => s.ValueKind == JsonValueKind.Object && String(s, "description") == Options.StreamDescription)
            .Select(s => String(s, "stream_id"))
            .FirstOrDefault(id => !string.IsNullOrEmpty(id));
        void Body(Utf8JsonWriter writer)
        {
            if (existing is not null)
            {
                writer.WriteString("stream_id", existing);
            }

            writer.WriteStartArray("events_requested");
            writer.WriteStringValue(SessionRevokedEventType);
            writer.WriteStringValue(AccessTokenRevokedEventType);
            writer.WriteStringValue(SigningKeyRevokedEventType);
            writer.WriteStringValue(VerificationEventType);
            writer.WriteEndArray();
            writer.WriteString("description", Options.StreamDescription);
            writer.WriteStartObject("delivery");
            writer.WriteString("method", method);
            if (Options.Delivery == SharedSignalsDelivery.Push)
            {
                // SSF 1.0 §6.1.1: the receiver's endpoint, and the header the transmitter sends with each push. An
                // adopted stream gets the secret of this start, so pushes made with an older one are refused (403).
                writer.WriteString("endpoint_url", PushEndpoint.AbsoluteUri);
                writer.WriteString("authorization_header", PushAuthorization);
            }

            writer.WriteEndObject();
        }

        (status, var stream) = await SendAsync(existing is null ? HttpMethod.Post : HttpMethod.Patch, configuration, Body, authenticate: true, stopping);
        if (status == HttpStatusCode.Conflict)
        {
            LogStreamConflict(_logger, Options.StreamDescription);
            return SetUpOutcome.Conflict;
        }

        if (status is not (HttpStatusCode.OK or HttpStatusCode.Created) || String(stream, "stream_id") is not { Length: > 0 } streamId)
        {
            LogSetUpFailed(_logger, existing is null ? "the stream could not be created" : "the stream could not be updated", (int)status);
            return SetUpOutcome.Failed;
        }

        Uri? poll = null;
        if (Options.Delivery == SharedSignalsDelivery.Poll
            && (!stream.TryGetProperty("delivery", out var delivery) || delivery.ValueKind != JsonValueKind.Object || AbsoluteUri(delivery, "endpoint_url") is not { } url))
        {
            LogSetUpFailed(_logger, "the stream has no poll endpoint_url", (int)status);
            return SetUpOutcome.Failed;
        }
        else if (Options.Delivery == SharedSignalsDelivery.Poll)
        {
            poll = AbsoluteUri(stream.GetProperty("delivery"), "endpoint_url");
        }

        // A stream adopted or created now may have missed events: healthy only once a verification asked for now returns.
        _state.MarkGap();
        // SSF 1.0 §8.1.1 events_delivered: a transmitter that does not send single access-token revocations leaves every
        // token's first status to introspection.
        _state.DeliversTokenRevocations = stream.TryGetProperty("events_delivered", out var delivered) && delivered.ValueKind == JsonValueKind.Array
            && delivered.EnumerateArray().Any(e => e.ValueKind == JsonValueKind.String && e.GetString() == AccessTokenRevokedEventType);
        _eventsDropped = EventsDropped(stream);
        _stream = new StreamInfo(streamId, poll, verification, configuration);
        LogStreamReady(_logger, streamId, existing is null ? "created" : "adopted", Options.Delivery.ToString());
        return SetUpOutcome.Ready;
    }

    /// <summary>SSF 1.0 §8.1.4.2: asks for a verification event with a fresh state; its return is what makes the stream healthy.</summary>
    private async Task RequestVerificationAsync(DateTimeOffset now, CancellationToken stopping)
    {
        if (_stream is not { } stream)
        {
            return;
        }

        // Events the transmitter lost since the last look are a gap: statuses learned before the verification asked for
        // below comes back are held to StatusCacheDuration, and tokens issued before it are introspected. Asked first, so
        // that the verification that makes the stream healthy again was asked for after the loss was seen.
        var (configurationStatus, configuration) = await SendAsync(
            HttpMethod.Get, new Uri(stream.ConfigurationEndpoint.AbsoluteUri + "?stream_id=" + Uri.EscapeDataString(stream.StreamId)), null, authenticate: true, stopping);
        if (configurationStatus == HttpStatusCode.OK && EventsDropped(configuration) is var dropped && dropped > _eventsDropped)
        {
            if (_eventsDropped >= 0)
            {
                LogEventsLost(_logger, stream.StreamId, dropped - _eventsDropped);
                _state.MarkGap();
            }

            _eventsDropped = dropped;
        }

        var state = Base64UrlEncoding.Encode(RandomNumberGenerator.GetBytes(16));
        lock (_gate)
        {
            // An answer to a state asked for longer ago than the health window could not make the stream healthy anyway.
            foreach (var (old, askedAt) in _pendingVerifications.ToList())
            {
                if (now - askedAt > 2 * Options.VerificationInterval || _pendingVerifications.Count >= MaxPendingVerifications)
                {
                    _pendingVerifications.Remove(old);
                }
            }

            _pendingVerifications[state] = now;
        }

        var (status, _) = await SendAsync(HttpMethod.Post, stream.VerificationEndpoint, writer =>
        {
            writer.WriteString("stream_id", stream.StreamId);
            writer.WriteString("state", state);
        }, authenticate: true, stopping);
        if (status == HttpStatusCode.NotFound)
        {
            StreamLost(stream);
        }
        else if (status is not (HttpStatusCode.NoContent or HttpStatusCode.OK or HttpStatusCode.Accepted))
        {
            LogVerificationRequestFailed(_logger, stream.StreamId, (int)status);
        }
    }

    /// <summary>
    /// RFC 8936 §2.4: acknowledges what the previous poll brought and was acted on (<c>ack</c>), reports what was refused
    /// (<c>setErrs</c>), and takes the next SETs at once (<c>returnImmediately</c>); repeated while more are available.
    /// </summary>
    private async Task PollAsync(CancellationToken stopping)
    {
        for (var round = 0; round < MaxPollRounds && _stream is { PollEndpoint: { } endpoint } stream; round++)
        {
            var acknowledged = _acknowledge.ToList();
            var errors = _setErrors.ToList();
            var (status, answer) = await SendAsync(HttpMethod.Post, endpoint, writer =>
            {
                writer.WriteStartArray("ack");
                foreach (var jti in acknowledged)
                {
                    writer.WriteStringValue(jti);
                }

                writer.WriteEndArray();
                if (errors.Count > 0)
                {
                    writer.WriteStartObject("setErrs");
                    foreach (var (jti, error) in errors)
                    {
                        writer.WriteStartObject(jti);
                        writer.WriteString("err", error.Error);
                        writer.WriteString("description", error.Description);
                        writer.WriteEndObject();
                    }

                    writer.WriteEndObject();
                }

                writer.WriteBoolean("returnImmediately", true);
                writer.WriteNumber("maxEvents", MaxEventsPerPoll);
            }, authenticate: true, stopping);
            if (status == HttpStatusCode.NotFound)
            {
                StreamLost(stream);
                return;
            }

            if (status != HttpStatusCode.OK || answer.ValueKind != JsonValueKind.Object || !answer.TryGetProperty("sets", out var sets) || sets.ValueKind != JsonValueKind.Object)
            {
                LogPollFailed(_logger, stream.StreamId, (int)status);
                return;
            }

            _acknowledge.RemoveAll(acknowledged.Contains);
            foreach (var (jti, _) in errors)
            {
                _setErrors.Remove(jti);
            }

            _state.PollSucceeded(Time.GetUtcNow());
            foreach (var item in sets.EnumerateObject())
            {
                var check = item.Value.ValueKind == JsonValueKind.String
                    ? await ProcessAsync(item.Value.GetString()!, stopping)
                    : SetCheck.Refused("invalid_request", "The SET is not a string.");
                if (check.Valid)
                {
                    _acknowledge.Add(item.Name);
                }
                else if (!check.Unavailable)
                {
                    _setErrors[item.Name] = check;
                }

                // Unavailable (the keys cannot be fetched): neither, so the transmitter sends it again.
            }

            if (!answer.TryGetProperty("moreAvailable", out var more) || more.ValueKind != JsonValueKind.True)
            {
                return;
            }
        }
    }

    private void StreamLost(StreamInfo stream)
    {
        LogStreamLost(_logger, stream.StreamId);
        _stream = null;
        _state.MarkGap();
    }

    /// <summary>
    /// Verifies one SET and, the first time its <c>jti</c> is seen, acts on its events: a CAEP 1.0 §3.1 session-revoked
    /// revokes the session its <c>sub_id</c> names (a complex subject's <c>session</c>, or an opaque subject: the
    /// <c>sid</c>); a verification event (SSF 1.0 §8.1.4.1) with a state this instance asked for counts toward health;
    /// any other event type is acknowledged and ignored (RFC 8417 §2.2: a recipient ignores events it does not understand).
    /// </summary>
    internal async Task<SetCheck> ProcessAsync(string set, CancellationToken cancellationToken)
    {
        var now = Time.GetUtcNow();
        // Made on first use: a push may arrive before the hosted service has started.
        _validator ??= new SecurityEventTokenValidator(new SigningKeyRefetcher(Time, _check.UnknownKeyRefetchInterval, _check.RetryAfter));
        var check = await _validator.CheckAsync(set, Issuer, Bearer, now, cancellationToken);
        if (!check.Valid)
        {
            if (!check.Unavailable)
            {
                LogSetRefused(_logger, check.Error!, check.Description!);
            }

            return check;
        }

        var jti = check.Jti!;
        lock (_gate)
        {
            if (_seen.Contains(jti))
            {
                Interlocked.Increment(ref DuplicateSets);
                return check;
            }
        }

        foreach (var item in check.Payload.GetProperty("events").EnumerateObject())
        {
            if (item.Name == SessionRevokedEventType && SessionOf(check.Payload) is { } sid)
            {
                _state.RevokeSession(sid, now);
            }
            else if (item.Name == AccessTokenRevokedEventType && TokenOf(check.Payload) is { } revokedJti)
            {
                // The token service's own event (docs/shared-signals.md): the token's jti as an SSF 1.0 §3.5.1 jwt_id
                // subject, held until the token's exp (token_exp), after which JwtBearer refuses it anyway.
                var until = item.Value.ValueKind == JsonValueKind.Object && item.Value.TryGetProperty("token_exp", out var exp)
                    && exp.TryGetInt64(out var seconds) && seconds is > 0 and < 253402300799
                    ? DateTimeOffset.FromUnixTimeSeconds(seconds)
                    : now + Options.RevokedSessionRetention;
                _state.RevokeToken(revokedJti, until, now);
            }
            else if (item.Name == SigningKeyRevokedEventType && item.Value.ValueKind == JsonValueKind.Object && String(item.Value, "kid") is { Length: > 0 } kid)
            {
                // The token service's own event: the operator revoked a signing key. Tokens it signed are refused now,
                // and the JWKS is fetched again so the key leaves this API's copy too.
                _state.RevokeKey(kid, now);
                Bearer.ConfigurationManager?.RequestRefresh();
            }
            else if (item.Name == VerificationEventType && item.Value.ValueKind == JsonValueKind.Object && String(item.Value, "state") is { } state)
            {
                DateTimeOffset askedAt;
                lock (_gate)
                {
                    if (!_pendingVerifications.Remove(state, out askedAt))
                    {
                        continue;
                    }
                }

                _state.VerificationAnswered(askedAt, now);
            }
        }

        lock (_gate)
        {
            if (_seen.Add(jti))
            {
                _seenOrder.Enqueue(jti);
                if (_seenOrder.Count > MaxSeenJtis)
                {
                    _seen.Remove(_seenOrder.Dequeue());
                }
            }
        }

        Interlocked.Increment(ref AcceptedSets);
        Notify();
        return check;
    }

    /// <summary>The session a session-revoked SET names: SSF 1.0 §3.3 complex subject's session, or an opaque subject (RFC 9493 §3.2.2).</summary>
    private static string? SessionOf(JsonElement payload)
    {
        if (!payload.TryGetProperty("sub_id", out var subject) || subject.ValueKind != JsonValueKind.Object)
        {
            return null;
        }

        return String(subject, "format") switch
        {
            "complex" when subject.TryGetProperty("session", out var session) && session.ValueKind == JsonValueKind.Object && String(session, "format") == "opaque" => String(session, "id"),
            "opaque" => String(subject, "id"),
            _ => null,
        };
    }

    /// <summary>The access token an access-token-revoked SET names: an SSF 1.0 §3.5.1 jwt_id subject of this token service.</summary>
    private string? TokenOf(JsonElement payload) =>
        payload.TryGetProperty("sub_id", out var subject) && subject.ValueKind == JsonValueKind.Object && String(subject, "format") == "jwt_id"
            && String(subject, "iss") == Issuer && String(subject, "jti") is { Length: > 0 } jti ? jti : null;

    /// <summary>Where the transmitter pushes: PublicOrigin plus PushPath.</summary>
    internal Uri PushEndpoint => new(_check.PublicOrigin!.AbsoluteUri.TrimEnd('/') + Options.PushPath);

    /// <summary>
    /// <c>POST</c> <see cref="SharedSignalsReceiverOptions.PushPath"/>: one pushed SET (RFC 8935 §2). 202 once it has been
    /// acted on or was seen before (§2.2); 400 with <c>err</c> and <c>description</c> for a SET refused (§2.3); 401
    /// without an Authorization header and 403 with another one than this instance gave the transmitter; 503 when the
    /// token service's keys cannot be fetched (the transmitter retries).
    /// </summary>
    public async Task HandlePushAsync(HttpContext context)
    {
        var response = context.Response;
        response.Headers.CacheControl = "no-store";
        if (!HttpMethods.IsPost(context.Request.Method))
        {
            response.StatusCode = StatusCodes.Status405MethodNotAllowed;
            response.Headers.Allow = "POST";
            return;
        }

        var authorization = context.Request.Headers.Authorization;
        if (authorization.Count == 0)
        {
            response.StatusCode = StatusCodes.Status401Unauthorized;
            response.Headers.WWWAuthenticate = "Bearer";
            return;
        }

        // Compared in fixed time: the header is a secret (RFC 8935 §4.1).
        if (authorization.Count != 1 || !CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(authorization[0] ?? string.Empty), _pushAuthorization))
        {
            response.StatusCode = StatusCodes.Status403Forbidden;
            return;
        }

        // RFC 8935 §2: the body is the SET, as application/secevent+jwt.
        if (!MediaTypeHeaderValue.TryParse(context.Request.ContentType, out var contentType)
            || !string.Equals(contentType.MediaType, PushMediaType, StringComparison.OrdinalIgnoreCase))
        {
            await PushErrorAsync(context, "invalid_request", "The body must be a SET of media type application/secevent+jwt.");
            return;
        }

        if (await ReadBodyAsync(context) is not { } set)
        {
            await PushErrorAsync(context, "invalid_request", $"The body must be a SET of at most {MaxPushBytes} bytes of UTF-8.");
            return;
        }

        var check = await ProcessAsync(set, context.RequestAborted);
        if (check.Unavailable)
        {
            response.StatusCode = StatusCodes.Status503ServiceUnavailable;
            response.Headers.RetryAfter = ((int)Math.Ceiling(_check.RetryAfter.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
            return;
        }

        if (!check.Valid)
        {
            await PushErrorAsync(context, check.Error!, check.Description!);
            return;
        }

        response.StatusCode = StatusCodes.Status202Accepted;
    }

    private static async Task<string?> ReadBodyAsync(HttpContext context)
    {
        if (context.Request.ContentLength > MaxPushBytes)
        {
            return null;
        }

        var buffer = new ArrayBufferWriter<byte>();
        var chunk = new byte[8 * 1024];
        int read;
        while ((read = await context.Request.Body.ReadAsync(chunk, context.RequestAborted)) > 0)
        {
            if (buffer.WrittenCount + read > MaxPushBytes)
            {
                return null;
            }

            buffer.Write(chunk.AsSpan(0, read));
        }

        try
        {
            return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(buffer.WrittenSpan);
        }
        catch (DecoderFallbackException)
        {
            return null;
        }
    }

    /// <summary>RFC 8935 §2.3: 400 with a JSON object of <c>err</c> and <c>description</c>.</summary>
    private static async Task PushErrorAsync(HttpContext context, string error, string description)
    {
        context.Response.StatusCode = StatusCodes.Status400BadRequest;
        context.Response.ContentType = JsonMediaType;
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("err", error);
            writer.WriteString("description", description);
            writer.WriteEndObject();
        }

        context.Response.ContentLength = buffer.WrittenCount;
        await context.Response.Body.WriteAsync(buffer.WrittenMemory, context.RequestAborted);
    }

    /// <summary>One request to the token service through the scheme's backchannel; status 0 when it could not be made.</summary>
    private async Task<(HttpStatusCode Status, JsonElement Json)> SendAsync(HttpMethod method, Uri url, Action<Utf8JsonWriter>? body, bool authenticate, CancellationToken stopping)
    {
        using var request = new HttpRequestMessage(method, url);
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(JsonMediaType));
        if (authenticate)
        {
            // SSF 1.0 §7.1.1 authorization_schemes: the token service takes the resource server's client credentials
            // in HTTP Basic (RFC 7617), as at introspection.
            request.Headers.Authorization = new AuthenticationHeaderValue("Basic", SessionStatusChecker.BasicCredentials(_check));
        }

        if (body is not null)
        {
            var buffer = new ArrayBufferWriter<byte>();
            using (var writer = new Utf8JsonWriter(buffer))
            {
                writer.WriteStartObject();
                body(writer);
                writer.WriteEndObject();
            }

            request.Content = new ByteArrayContent(buffer.WrittenSpan.ToArray());
            request.Content.Headers.ContentType = new MediaTypeHeaderValue(JsonMediaType);
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        timeout.CancelAfter(SharedSignalsState.PollTimeout);
        try
        {
            using var response = await Bearer.Backchannel.SendAsync(request, timeout.Token);
            var bytes = await response.Content.ReadAsByteArrayAsync(timeout.Token);
            JsonElement json = default;
            if (bytes.Length > 0)
            {
                try
                {
                    json = JsonDocument.Parse(bytes).RootElement.Clone();
                }
                catch (JsonException)
                {
                    // Not JSON (an error page): the status says what happened.
                }
            }

            return (response.StatusCode, json);
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException or InvalidOperationException
            || (ex is OperationCanceledException && !stopping.IsCancellationRequested))
        {
            return (0, default);
        }
    }

    private static string? String(JsonElement obj, string name) =>
        obj.ValueKind == JsonValueKind.Object && obj.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    /// <summary>
    /// An endpoint the metadata or the stream names: absolute, and https unless the scheme allows http metadata
    /// (<c>RequireHttpsMetadata</c> false, a developer's machine): the client secret and the SETs travel to it.
    /// </summary>
    private Uri? AbsoluteUri(JsonElement obj, string name) =>
        String(obj, name) is { } text && Uri.TryCreate(text, UriKind.Absolute, out var uri)
            && (uri.Scheme == Uri.UriSchemeHttps || (uri.Scheme == Uri.UriSchemeHttp && !Bearer.RequireHttpsMetadata)) ? uri : null;

    /// <summary>The token service's stream configuration member counting the events it will never deliver on the stream.</summary>
    internal const string EventsDroppedMember = "tokenservice_events_dropped";

    private static long EventsDropped(JsonElement stream) =>
        stream.ValueKind == JsonValueKind.Object && stream.TryGetProperty(EventsDroppedMember, out var value) && value.TryGetInt64(out var count) && count >= 0 ? count : -1;

    /// <summary>CAEP 1.0 §3.1 Session Revoked.</summary>
    internal const string SessionRevokedEventType = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";

    /// <summary>
    /// The token service's access-token-revoked event (SsfProtocol.AccessTokenRevokedEventType there; this library does
    /// not reference the service, so the URI is repeated: docs/shared-signals.md lists it).
    /// </summary>
    internal const string AccessTokenRevokedEventType = "urn:uuid:ed12b786-aca5-4180-8382-efd719f712d9";

    /// <summary>The token service's signing-key-revoked event (SsfProtocol.SigningKeyRevokedEventType there).</summary>
    internal const string SigningKeyRevokedEventType = "urn:uuid:2c4b0bae-9755-40ca-8bb6-5b22ceba07fc";

    /// <summary>SSF 1.0 §8.1.4.1 Verification.</summary>
    internal const string VerificationEventType = "https://schemas.openid.net/secevent/ssf/event-type/verification";

    [LoggerMessage(EventId = 7010, Level = LogLevel.Warning, Message = "Shared Signals receiver: the token service refused a stream described '{Description}' (409: this receiver client has as many streams as the token service allows, SharedSignals:MaxStreamsPerReceiver). The status cache stays on bounded staleness; each API instance needs a stream of its own.")]
    private static partial void LogStreamConflict(ILogger logger, string description);

    [LoggerMessage(EventId = 7011, Level = LogLevel.Warning, Message = "Shared Signals receiver set-up failed: {Reason} (HTTP {Status}); retrying on a back-off, bounded staleness meanwhile.")]
    private static partial void LogSetUpFailed(ILogger logger, string reason, int status);

    [LoggerMessage(EventId = 7012, Level = LogLevel.Information, Message = "Shared Signals receiver: stream {StreamId} {Action}, delivery {Delivery}.")]
    private static partial void LogStreamReady(ILogger logger, string streamId, string action, string delivery);

    [LoggerMessage(EventId = 7013, Level = LogLevel.Warning, Message = "Shared Signals receiver: polling stream {StreamId} failed (HTTP {Status}).")]
    private static partial void LogPollFailed(ILogger logger, string streamId, int status);

    [LoggerMessage(EventId = 7014, Level = LogLevel.Warning, Message = "Shared Signals receiver: asking stream {StreamId} for a verification event failed (HTTP {Status}).")]
    private static partial void LogVerificationRequestFailed(ILogger logger, string streamId, int status);

    [LoggerMessage(EventId = 7015, Level = LogLevel.Warning, Message = "Shared Signals receiver: a SET was refused ({Error}): {Description}")]
    private static partial void LogSetRefused(ILogger logger, string error, string description);

    [LoggerMessage(EventId = 7018, Level = LogLevel.Warning, Message = "Shared Signals receiver: the token service reports {Count} event(s) of stream {StreamId} it will never deliver (its outbox bound, or queuing that failed); treated as a gap: bounded staleness until a new verification comes back.")]
    private static partial void LogEventsLost(ILogger logger, string streamId, long count);

    [LoggerMessage(EventId = 7017, Level = LogLevel.Error, Message = "Shared Signals receiver: a cycle failed; trying again.")]
    private static partial void LogCycleFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 7016, Level = LogLevel.Warning, Message = "Shared Signals receiver: stream {StreamId} is gone at the token service (404); setting up again.")]
    private static partial void LogStreamLost(ILogger logger, string streamId);
}
