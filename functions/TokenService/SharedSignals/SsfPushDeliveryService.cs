using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TokenService.Configuration;

namespace TokenService.SharedSignals;

/// <summary>
/// Push delivery (RFC 8935; SSF 1.0 §6.1.1) of every push stream's held SETs, a background service on both hosts, on
/// <see cref="TimeProvider"/>. Per stream, one SET at a time, oldest first, so a receiver gets its events in the order
/// they were queued; streams are delivered independently (a slow or failing receiver delays only its own).
/// <list type="bullet">
/// <item><c>202</c>: delivered (RFC 8935 §2.2); the SET leaves the outbox.</item>
/// <item><c>400</c> (with <c>{"err","description"}</c>, RFC 8935 §2.3): the receiver refuses that SET; it is dropped and
/// logged, never sent again (sending the same SET again would be refused again), and the next one goes.</item>
/// <item><c>401</c>/<c>403</c>: the stream's delivery is failing (its authorization header is not accepted); logged, and
/// the same SET is retried after the back-off.</item>
/// <item>Anything else (5xx, 429, a redirect, a timeout, a connection failure): retried after the back-off, the same SET
/// with the same <c>jti</c> (RFC 8935 §2: the receiver deduplicates by <c>jti</c>), in order.</item>
/// </list>
/// The back-off starts at <c>SharedSignals:PushInitialBackoff</c>, doubles with each failure in a row up to
/// <c>SharedSignals:PushMaxBackoff</c>, plus up to 10% jitter (so receivers that fail together do not retry together),
/// and is at least the receiver's <c>Retry-After</c> (RFC 9110 §10.2.3), capped at the maximum back-off. A paused stream
/// holds its SETs, a disabled one drops them (SSF 1.0 §8.1.2); the outbox bound applies as for poll.
/// </summary>
public sealed partial class SsfPushDeliveryService(
    SsfStreamRegistry streams,
    SecurityEventTokenSigner signer,
    IHttpClientFactory httpClients,
    IOptions<SharedSignalsOptions> options,
    TimeProvider time,
    ILogger<SsfPushDeliveryService> logger) : BackgroundService
{
    /// <summary>The named HttpClient of the pushes (its handler is configurable like any IHttpClientFactory client).</summary>
    public const string HttpClientName = "ssf-push";

    /// <summary>RFC 8935 §2: the media type of a pushed SET (RFC 8417 §2.3).</summary>
    public const string SetMediaType = "application/secevent+jwt";

    private readonly Dictionary<SsfStream, Task> _running = new(ReferenceEqualityComparer.Instance);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            var now = time.GetUtcNow();
            DateTimeOffset? nextRetry = null;
            foreach (var done in _running.Where(r => r.Value.IsCompleted).Select(r => r.Key).ToList())
            {
                _running.Remove(done);
            }

            foreach (var stream in streams.All)
            {
                if (_running.ContainsKey(stream))
                {
                    continue;
                }

                bool due;
                lock (stream.Gate)
                {
                    due = stream.Push is not null && stream.PeekLocked() is not null;
                    if (due && stream.PushRetryAt is { } retryAt && retryAt > now)
                    {
                        due = false;
                        nextRetry = nextRetry is { } earliest && earliest < retryAt ? earliest : retryAt;
                    }
                }

                if (due)
                {
                    _running[stream] = DrainAsync(stream, stoppingToken);
                }
            }

            // Wait for new work, a drain to finish (its stream may have more, or be due again later), or the earliest
            // back-off to pass, whichever comes first.
            using var wait = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
            var waits = new List<Task>(_running.Values) { streams.WaitForDeliveryWorkAsync(wait.Token) };
            if (nextRetry is { } at)
            {
                var untilRetry = at - time.GetUtcNow();
                if (untilRetry > TimeSpan.Zero)
                {
                    waits.Add(Task.Delay(untilRetry, time, wait.Token));
                }

                // A timer counts from the clock's time when it is made: if the clock passed the retry time meanwhile
                // (a clock that jumps, or a slow thread), that timer would fire late, so look again at once instead.
                if (untilRetry <= TimeSpan.Zero || time.GetUtcNow() >= at)
                {
                    await wait.CancelAsync();
                    continue;
                }
            }

            await Task.WhenAny(waits);
            await wait.CancelAsync();
        }

        await Task.WhenAll(_running.Values).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    /// <summary>Sends the stream's held SETs, oldest first, until it holds none, is paused or disabled, or a delivery fails.</summary>
    private async Task DrainAsync(SsfStream stream, CancellationToken stoppingToken)
    {
        await Task.Yield();
        while (!stoppingToken.IsCancellationRequested)
        {
            SsfOutboxEntry? entry;
            SsfPushDelivery? push;
            lock (stream.Gate)
            {
                entry = stream.PeekLocked();
                push = stream.Push;
                if (entry is null || push is null || stream.PushRetryAt > time.GetUtcNow())
                {
                    return;
                }
            }

            PushOutcome outcome;
            try
            {
                // Signed at its first transmission and kept: a retry sends the same SET, the same jti (RFC 8935 §2).
                entry.Set ??= await signer.SignAsync(stream, entry, stoppingToken);
                outcome = await SendAsync(stream, push, entry, stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                LogPushError(logger, ex, stream.StreamId, entry.Jti);
                outcome = PushOutcome.Retry(null);
            }

            lock (stream.Gate)
            {
                if (outcome.Kind is PushOutcomeKind.Delivered or PushOutcomeKind.Refused)
                {
                    stream.RemoveLocked(entry);
                    stream.PushFailures = 0;
                    stream.PushRetryAt = null;
                    continue;
                }

                stream.PushFailures++;
                var delay = Backoff(stream.PushFailures, outcome.RetryAfter);
                stream.PushRetryAt = time.GetUtcNow() + delay;
                LogRetryScheduled(logger, stream.StreamId, entry.Jti, stream.PushFailures, delay);
                return;
            }
        }
    }

    private async Task<PushOutcome> SendAsync(SsfStream stream, SsfPushDelivery push, SsfOutboxEntry entry, CancellationToken stoppingToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, push.EndpointUrl)
        {
            // RFC 8935 §2: the SET is the body, Content-Type application/secevent+jwt; the answer is JSON (§2.2, §2.3).
            Content = new ByteArrayContent(Encoding.ASCII.GetBytes(entry.Set!)),
        };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue(SetMediaType);
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        if (push.AuthorizationHeader is { } authorization)
        {
            // SSF 1.0 §8.1.1: the receiver's authorization_header is sent as given with every delivery (validated as a
            // header value when the stream was configured).
            request.Headers.TryAddWithoutValidation("Authorization", authorization);
        }

        // Per request, on the TimeProvider: a receiver that does not answer within PushTimeout is a failed attempt.
        using var timeout = new CancellationTokenSource(options.Value.PushTimeout, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken, timeout.Token);
        HttpResponseMessage response;
        try
        {
            response = await httpClients.CreateClient(HttpClientName).SendAsync(request, HttpCompletionOption.ResponseHeadersRead, linked.Token);
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !stoppingToken.IsCancellationRequested)
        {
            LogPushTimedOut(logger, stream.StreamId, entry.Jti, options.Value.PushTimeout);
            return PushOutcome.Retry(null);
        }
        catch (HttpRequestException ex)
        {
            LogPushError(logger, ex, stream.StreamId, entry.Jti);
            return PushOutcome.Retry(null);
        }

        using (response)
        {
            var status = (int)response.StatusCode;
            switch (response.StatusCode)
            {
                case HttpStatusCode.Accepted:
                    LogDelivered(logger, entry.Jti, stream.StreamId);
                    return PushOutcome.Delivered;
                case HttpStatusCode.BadRequest:
                    // RFC 8935 §2.3: the receiver refused this SET; its err code is logged (the description is the
                    // receiver's text) and the SET is not sent again.
                    LogRefused(logger, stream.StreamId, entry.Jti, await ReadErrAsync(response, linked.Token));
                    return PushOutcome.Refused;
                case HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden:
                    LogUnauthorized(logger, stream.StreamId, stream.OwnerClientId, status);
                    return PushOutcome.Retry(null);
                default:
                    LogPushFailed(logger, stream.StreamId, entry.Jti, status);
                    return PushOutcome.Retry(RetryAfter(response));
            }
        }
    }

    /// <summary>
    /// The wait after the <paramref name="failures"/>th failure in a row: the initial back-off doubled per failure, at most
    /// the maximum, plus up to 10% jitter; at least the receiver's Retry-After (capped at the maximum back-off).
    /// </summary>
    internal TimeSpan Backoff(int failures, TimeSpan? retryAfter)
    {
        var o = options.Value;
        var exponent = Math.Min(failures - 1, 30);
        var ticks = Math.Min(o.PushInitialBackoff.Ticks * (1L << exponent), o.PushMaxBackoff.Ticks);
        var delay = TimeSpan.FromTicks(ticks + (long)(ticks * 0.1 * Random.Shared.NextDouble()));
        if (retryAfter is { } after && after > delay)
        {
            delay = after < o.PushMaxBackoff ? after : o.PushMaxBackoff;
        }

        return delay;
    }

    /// <summary>RFC 9110 §10.2.3 Retry-After, seconds or a date, as a wait from now; null when absent.</summary>
    private TimeSpan? RetryAfter(HttpResponseMessage response)
    {
        if (response.Headers.RetryAfter is not { } retryAfter)
        {
            return null;
        }

        if (retryAfter.Delta is { } delta)
        {
            return delta;
        }

        return retryAfter.Date is { } date && date > time.GetUtcNow() ? date - time.GetUtcNow() : null;
    }

    private static async Task<string> ReadErrAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        try
        {
            var body = await response.Content.ReadAsByteArrayAsync(cancellationToken);
            if (body.Length is > 0 and <= 4096 && Jwt.JsonText.IsWellFormed(body, maxDepth: 4))
            {
                using var document = JsonDocument.Parse(body);
                if (document.RootElement.ValueKind == JsonValueKind.Object && Jwt.JsonText.GetStringOrNull(document.RootElement, "err") is { Length: <= 64 } err)
                {
                    return err;
                }
            }
        }
        catch (Exception ex) when (ex is HttpRequestException or JsonException or IOException)
        {
            // The SET is refused all the same; only the code is missing from the log.
        }

        return "unspecified";
    }

    private enum PushOutcomeKind
    {
        Delivered,
        Refused,
        Retry,
    }

    private readonly record struct PushOutcome(PushOutcomeKind Kind, TimeSpan? RetryAfter)
    {
        public static PushOutcome Delivered => new(PushOutcomeKind.Delivered, null);

        public static PushOutcome Refused => new(PushOutcomeKind.Refused, null);

        public static PushOutcome Retry(TimeSpan? retryAfter) => new(PushOutcomeKind.Retry, retryAfter);
    }

    [LoggerMessage(EventId = 2207, Level = LogLevel.Debug, Message = "SET {Jti} of stream {StreamId} pushed (202).")]
    private static partial void LogDelivered(ILogger logger, string jti, string streamId);

    [LoggerMessage(EventId = 2208, Level = LogLevel.Warning, Message = "The receiver of stream {StreamId} refused SET {Jti} (400, {Error}); it is dropped and not sent again.")]
    private static partial void LogRefused(ILogger logger, string streamId, string jti, string error);

    [LoggerMessage(EventId = 2209, Level = LogLevel.Warning, Message = "Push delivery of stream {StreamId} (receiver {ClientId}) is failing: its endpoint answered {Status}; check the stream's authorization_header. Retried with back-off.")]
    private static partial void LogUnauthorized(ILogger logger, string streamId, string clientId, int status);

    [LoggerMessage(EventId = 2210, Level = LogLevel.Information, Message = "Push of SET {Jti} on stream {StreamId} failed ({Status}); retried with back-off.")]
    private static partial void LogPushFailed(ILogger logger, string streamId, string jti, int status);

    [LoggerMessage(EventId = 2211, Level = LogLevel.Information, Message = "Push of SET {Jti} on stream {StreamId} timed out after {Timeout}; retried with back-off.")]
    private static partial void LogPushTimedOut(ILogger logger, string streamId, string jti, TimeSpan timeout);

    [LoggerMessage(EventId = 2212, Level = LogLevel.Information, Message = "Push of SET {Jti} on stream {StreamId} failed; retried with back-off.")]
    private static partial void LogPushError(ILogger logger, Exception exception, string streamId, string jti);

    [LoggerMessage(EventId = 2213, Level = LogLevel.Debug, Message = "Stream {StreamId}: SET {Jti} retried after failure {Failures}, in {Delay}.")]
    private static partial void LogRetryScheduled(ILogger logger, string streamId, string jti, int failures, TimeSpan delay);
}
