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
/// <para>
/// Streams live in <see cref="ISsfStreamStore"/>, shared by every instance with the Table store: each instance runs this
/// loop (and on the Functions app a timer trigger calls <see cref="DeliverDueAsync"/>), and a lease in the stream's state
/// (owner and end, taken with If-Match) lets one loop at a time deliver a stream, so its SETs still go one at a time in
/// order, each at least once. A loop delivers what this instance queued at once, and sweeps the store every
/// <c>SharedSignals:PushSweepInterval</c> for what other instances queued or a restart left.
/// </para>
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

    /// <summary>This delivery loop's name in a stream's lease (SSF streams are shared by every instance through the store).</summary>
    private readonly string _owner = Environment.MachineName + "/" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(6));

    private readonly Dictionary<string, Task> _running = new(StringComparer.Ordinal);

    /// <summary>How long a lease lets its owner deliver a stream alone: one push with its timeout, and a margin; renewed per SET.</summary>
    private TimeSpan LeaseDuration => options.Value.PushTimeout + TimeSpan.FromSeconds(30);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var nextSweep = time.GetUtcNow();
        while (!stoppingToken.IsCancellationRequested)
        {
            var now = time.GetUtcNow();
            foreach (var done in _running.Where(r => r.Value.IsCompleted).Select(r => r.Key).ToList())
            {
                _running.Remove(done);
            }

            // Look for due streams: every sweep interval (events queued by other instances, or held across a restart)
            // and whenever this instance was told of work; a store that cannot answer is tried again at the next sweep.
            DateTimeOffset? nextRetry = null;
            try
            {
                foreach (var (stream, retryAt) in await DueStreamsAsync(now, stoppingToken))
                {
                    if (retryAt is { } at)
                    {
                        nextRetry = nextRetry is { } earliest && earliest < at ? earliest : at;
                    }
                    else if (!_running.ContainsKey(stream.StreamId))
                    {
                        _running[stream.StreamId] = DrainAsync(stream.StreamId, stoppingToken);
                    }
                }

                if (now >= nextSweep)
                {
                    await streams.RefreshStatusAsync(stoppingToken);
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception ex)
            {
                // The store could not answer (or a row could not be read): the loop goes on and the next sweep tries
                // again; push delivery must never stop the host that serves tokens.
                LogStoreUnavailable(logger, ex.Message.TrimEnd('.'));
            }

            if (now >= nextSweep)
            {
                nextSweep = now + options.Value.PushSweepInterval;
            }

            nextRetry = nextRetry is { } r && r < nextSweep ? r : nextSweep;

            // Wait for new work, a drain to finish (its stream may have more, or be due again later), or the earliest
            // back-off, lease end or sweep to pass, whichever comes first.
            using var wait = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
            var waits = new List<Task>(_running.Values) { streams.WaitForDeliveryWorkAsync(wait.Token) };
            var untilRetry = nextRetry.Value - time.GetUtcNow();
            if (untilRetry > TimeSpan.Zero)
            {
                waits.Add(Task.Delay(untilRetry, time, wait.Token));
            }

            // A timer counts from the clock's time when it is made: if the clock passed the retry time meanwhile (a clock
            // that jumps, or a slow thread), that timer would fire late, so look again at once instead.
            if (untilRetry <= TimeSpan.Zero || time.GetUtcNow() >= nextRetry.Value)
            {
                await wait.CancelAsync();
                continue;
            }

            await Task.WhenAny(waits);
            await wait.CancelAsync();
        }

        await Task.WhenAll(_running.Values).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);

        // A stopping host finishes the queuing writes it started (sessions ended just before), so that they are held.
        await streams.WhenQueuedAsync().ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    /// <summary>
    /// One pass over every push stream (the Functions timer trigger, which drains the outbox on the Functions app): each
    /// due stream whose lease this instance gets is delivered until it holds nothing, is paused or its delivery fails.
    /// Safe on any number of instances at once: the lease lets one deliver a stream at a time, in order.
    /// </summary>
    public async Task<int> DeliverDueAsync(CancellationToken cancellationToken)
    {
        if (!options.Value.Enabled)
        {
            return 0;
        }

        var due = (await DueStreamsAsync(time.GetUtcNow(), cancellationToken)).Where(d => d.RetryAt is null).ToList();
        await Task.WhenAll(due.Select(d => DrainAsync(d.Stream.StreamId, cancellationToken)));
        await streams.RefreshStatusAsync(cancellationToken);
        return due.Count;
    }

    /// <summary>
    /// The enabled push streams that hold a SET: with a null time when one may go now, else when to look again (its
    /// back-off ends, or another instance's lease on it does).
    /// </summary>
    private async Task<List<(SsfStream Stream, DateTimeOffset? RetryAt)>> DueStreamsAsync(DateTimeOffset now, CancellationToken cancellationToken)
    {
        var due = new List<(SsfStream, DateTimeOffset?)>();
        foreach (var stream in await streams.Store.ListAsync(cancellationToken))
        {
            DateTimeOffset? notBefore;
            lock (stream.Gate)
            {
                if (stream.Push is null || stream.Status != SsfStreamStatus.Enabled)
                {
                    continue;
                }

                notBefore = stream.PushRetryAt is { } retryAt && retryAt > now ? retryAt : null;
                if (stream.LeaseOwner is { } owner && owner != _owner && stream.LeaseUntil is { } leaseEnd && leaseEnd > now)
                {
                    notBefore = notBefore is { } n && n > leaseEnd ? n : leaseEnd;
                }
            }

            if (notBefore is not null || await streams.Store.PeekAsync(stream, cancellationToken) is not null)
            {
                due.Add((stream, notBefore));
            }
        }

        return due;
    }

    /// <summary>
    /// Takes the stream's lease (If-Match on the stream's state: of several instances one gets it), then sends its held
    /// SETs, oldest first, until it holds none, is paused or disabled, a delivery fails or the lease is lost; releases
    /// the lease at the end. A SET leaves the outbox only after the receiver's answer: at least once, in order.
    /// </summary>
    private async Task DrainAsync(string streamId, CancellationToken stoppingToken)
    {
        await Task.Yield();
        var store = streams.Store;
        var leased = false;
        try
        {
            var now = time.GetUtcNow();
            var stream = await store.UpdateAsync(streamId, s =>
            {
                if (s.Push is null || s.Status != SsfStreamStatus.Enabled || (s.LeaseOwner is { } owner && owner != _owner && s.LeaseUntil > now))
                {
                    return false;
                }

                s.LeaseOwner = _owner;
                s.LeaseUntil = now + LeaseDuration;
                return true;
            }, stoppingToken);
            leased = stream is not null && HoldsLease(stream);
            while (leased && !stoppingToken.IsCancellationRequested)
            {
                SsfPushDelivery? push;
                lock (stream!.Gate)
                {
                    push = stream.Status == SsfStreamStatus.Enabled && !(stream.PushRetryAt > time.GetUtcNow()) ? stream.Push : null;
                }

                if (push is null || await store.PeekAsync(stream, stoppingToken) is not { } entry)
                {
                    return;
                }

                PushOutcome outcome;
                try
                {
                    // Signed at its first transmission and kept in the store: a retry, by any instance, sends the same
                    // SET with the same jti (RFC 8935 §2).
                    if (entry.Set is null)
                    {
                        entry.Set = await signer.SignAsync(stream, entry, stoppingToken);
                        await store.SaveSetAsync(stream, entry, stoppingToken);
                    }

                    outcome = await SendAsync(stream, push, entry, stoppingToken);
                }
                catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
                {
                    return;
                }
                catch (Exception ex) when (ex is not DependencyUnavailableException)
                {
                    LogPushError(logger, ex, stream.StreamId, entry.Jti);
                    outcome = PushOutcome.Retry(null);
                }

                now = time.GetUtcNow();
                if (outcome.Kind is PushOutcomeKind.Delivered or PushOutcomeKind.Refused)
                {
                    await store.RemoveAsync(stream, entry, stoppingToken);
                    stream = await store.UpdateAsync(streamId, s =>
                    {
                        s.PushFailures = 0;
                        s.PushRetryAt = null;
                        if (outcome.Kind == PushOutcomeKind.Delivered)
                        {
                            s.LastDeliveryAt = now;
                            s.LastActivityAt = now;
                        }

                        if (s.LeaseOwner == _owner)
                        {
                            s.LeaseUntil = now + LeaseDuration;
                        }

                        return true;
                    }, stoppingToken);
                    leased = stream is not null && HoldsLease(stream);
                    continue;
                }

                await store.UpdateAsync(streamId, s =>
                {
                    s.PushFailures++;
                    var delay = Backoff(s.PushFailures, outcome.RetryAfter);
                    s.PushRetryAt = now + delay;
                    LogRetryScheduled(logger, s.StreamId, entry.Jti, s.PushFailures, delay);
                    return true;
                }, stoppingToken);
                return;
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        catch (DependencyUnavailableException ex)
        {
            // The store cannot answer: nothing was lost (a SET leaves only after its delivery); the next sweep tries again.
            LogStoreUnavailable(logger, ex.Message.TrimEnd('.'));
        }
        finally
        {
            if (leased)
            {
                await ReleaseLeaseAsync(streamId);
            }
        }
    }

    private bool HoldsLease(SsfStream stream)
    {
        lock (stream.Gate)
        {
            return stream.LeaseOwner == _owner;
        }
    }

    /// <summary>Gives the lease up at once, so that another instance may deliver the stream without waiting for it to end.</summary>
    private async Task ReleaseLeaseAsync(string streamId)
    {
        try
        {
            await streams.Store.UpdateAsync(streamId, s =>
            {
                if (s.LeaseOwner != _owner)
                {
                    return false;
                }

                s.LeaseOwner = null;
                s.LeaseUntil = null;
                return true;
            }, CancellationToken.None);
        }
        catch (DependencyUnavailableException ex)
        {
            // The lease ends by itself (LeaseDuration); another instance waits until then.
            LogStoreUnavailable(logger, ex.Message.TrimEnd('.'));
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

    [LoggerMessage(EventId = 2216, Level = LogLevel.Warning, Message = "Push delivery: the stream store is unavailable ({Reason}); nothing is lost, the next sweep tries again.")]
    private static partial void LogStoreUnavailable(ILogger logger, string reason);

    [LoggerMessage(EventId = 2213, Level = LogLevel.Debug, Message = "Stream {StreamId}: SET {Jti} retried after failure {Failures}, in {Delay}.")]
    private static partial void LogRetryScheduled(ILogger logger, string streamId, string jti, int failures, TimeSpan delay);
}
