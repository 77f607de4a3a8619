using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;
using TokenService.Clients;
using TokenService.Configuration;
using TokenService.Http;
using TokenService.Jwt;
using TokenService.SharedSignals;

namespace TokenService.Endpoints;

/// <summary>
/// The OpenID Shared Signals transmitter (SSF 1.0, docs/shared-signals.md): its metadata (§7.1), the stream management
/// API (§8.1: configuration, status, verification) and poll delivery (RFC 8936). Receivers are resource-server clients,
/// authenticated with their client id and secret over HTTP Basic as at introspection (RFC 6749 §2.3.1); each owns up to
/// <c>SharedSignals:MaxStreamsPerReceiver</c> streams and sees only its own. Streams live in <see cref="ISsfStreamStore"/>
/// (a store that cannot answer: 503, nothing changed). Errors are problem details (RFC 9457) with the status codes SSF 1.0 §8.1 lists.
/// Everything answers 404 unless <c>SharedSignals:Enabled</c>.
/// </summary>
public sealed partial class SharedSignalsEndpoint(
    IOptions<SharedSignalsOptions> ssf,
    IOptions<TokenServiceOptions> service,
    SsfStreamRegistry streams,
    SecurityEventTokenSigner signer,
    ClientAuthenticator authenticator,
    RequestRateLimiter limiter,
    TimeProvider time,
    IHostEnvironment environment,
    ILogger<SharedSignalsEndpoint> logger)
{
    public const string ConfigurationRoute = "ssf/streams";
    public const string StatusRoute = "ssf/streams/status";
    public const string VerificationRoute = "ssf/streams/verify";
    public const string PollRoutePrefix = "ssf/poll/";

    /// <summary>Stream management and poll bodies are small JSON objects.</summary>
    internal const int MaxBodyBytes = 64 * 1024;

    /// <summary>The transmitter keeps the first characters of a receiver's description (SSF 1.0 §8.1.1 allows truncating).</summary>
    internal const int MaxDescriptionLength = 256;

    /// <summary>Longest verification <c>state</c> echoed back.</summary>
    internal const int MaxStateLength = 1024;

    private static readonly IReadOnlyDictionary<string, StringValues> NoForm = new Dictionary<string, StringValues>();

    /// <summary><c>GET /.well-known/ssf-configuration</c>: SSF 1.0 §7.1 Transmitter Configuration Metadata.</summary>
    public Task ConfigurationAsync(HttpContext context) => EndpointInvoker.InvokeAsync(context, oauthErrors: false, ctx =>
    {
        if (!HttpMethods.IsGet(ctx.Request.Method) && !HttpMethods.IsHead(ctx.Request.Method))
        {
            return ProblemResponses.MethodNotAllowedAsync(ctx, "GET, HEAD");
        }

        if (!ssf.Value.Enabled)
        {
            return NotEnabledAsync(ctx);
        }

        var issuer = service.Value.IssuerOrThrow;
        var baseUrl = issuer.TrimEnd('/');
        return OAuthResponses.WriteJsonAsync(ctx, 200, writer =>
        {
            writer.WriteString("spec_version", SsfProtocol.SpecVersion);
            // §7.1: identical to the iss of the SETs; the JWKS is the one that verifies access tokens (same keys, same kids).
            writer.WriteString("issuer", issuer);
            writer.WriteString("jwks_uri", baseUrl + "/.well-known/jwks.json");
            // Push (RFC 8935) to the receiver's endpoint, or poll (RFC 8936) of ours (§6.1).
            writer.WriteStringArray("delivery_methods_supported", [SsfProtocol.PushDeliveryMethod, SsfProtocol.PollDeliveryMethod]);
            writer.WriteString("configuration_endpoint", baseUrl + "/" + ConfigurationRoute);
            writer.WriteString("status_endpoint", baseUrl + "/" + StatusRoute);
            writer.WriteString("verification_endpoint", baseUrl + "/" + VerificationRoute);
            // §7.1.1: the receiver authenticates with its OAuth client credentials in HTTP Basic (RFC 7617), the scheme
            // introspection takes (RFC 7662 §2.1); no access token is needed.
            writer.WriteStartArray("authorization_schemes");
            writer.WriteStartObject();
            writer.WriteString("spec_urn", "urn:ietf:rfc:7617");
            writer.WriteEndObject();
            writer.WriteEndArray();
            // §7.1: every session of the receiver's audiences is on its stream; there are no per-subject subscriptions.
            writer.WriteString("default_subjects", "ALL");
        }, cacheControl: "public, max-age=3600");
    });

    /// <summary>The configuration endpoint (SSF 1.0 §8.1.1): POST creates, GET reads, PATCH updates, PUT replaces, DELETE deletes.</summary>
    public Task StreamsAsync(HttpContext context) => EndpointInvoker.InvokeAsync(context, oauthErrors: false, async ctx =>
    {
        var method = ctx.Request.Method;
        if (!HttpMethods.IsGet(method) && !HttpMethods.IsPost(method) && !HttpMethods.IsPatch(method) && !HttpMethods.IsPut(method) && !HttpMethods.IsDelete(method))
        {
            await ProblemResponses.MethodNotAllowedAsync(ctx, "GET, POST, PATCH, PUT, DELETE");
            return;
        }

        if (await ReceiverAsync(ctx) is not { } receiver)
        {
            return;
        }

        if (HttpMethods.IsGet(method))
        {
            await ReadStreamsAsync(ctx, receiver);
        }
        else if (HttpMethods.IsDelete(method))
        {
            // §8.1.1.5: 204 once removed, 404 for a stream this receiver does not have.
            if (!await streams.DeleteAsync(SingleQuery(ctx, "stream_id"), receiver, ctx.RequestAborted))
            {
                await ProblemResponses.NotFoundAsync(ctx, "This receiver has no stream with that stream_id.");
                return;
            }

            LogStreamDeleted(logger, receiver.ClientId);
            NoContent(ctx);
        }
        else if (await ReadObjectAsync(ctx) is { } body)
        {
            if (HttpMethods.IsPost(method))
            {
                await CreateAsync(ctx, receiver, body);
            }
            else
            {
                await UpdateAsync(ctx, receiver, body, replace: HttpMethods.IsPut(method));
            }
        }
    });

    /// <summary>The status endpoint (SSF 1.0 §8.1.2): GET reads, POST updates.</summary>
    public Task StatusAsync(HttpContext context) => EndpointInvoker.InvokeAsync(context, oauthErrors: false, async ctx =>
    {
        if (!HttpMethods.IsGet(ctx.Request.Method) && !HttpMethods.IsPost(ctx.Request.Method))
        {
            await ProblemResponses.MethodNotAllowedAsync(ctx, "GET, POST");
            return;
        }

        if (await ReceiverAsync(ctx) is not { } receiver)
        {
            return;
        }

        if (HttpMethods.IsGet(ctx.Request.Method))
        {
            // §8.1.2.1: stream_id is REQUIRED; an unknown one is 404.
            if (SingleQuery(ctx, "stream_id") is not { } id)
            {
                await BadRequestAsync(ctx, "stream_id is required.");
                return;
            }

            if (await streams.FindAsync(id, receiver, ctx.RequestAborted) is not { } found)
            {
                await ProblemResponses.NotFoundAsync(ctx, "This receiver has no stream with that stream_id.");
                return;
            }

            await WriteStatusAsync(ctx, found);
            return;
        }

        if (await ReadObjectAsync(ctx) is not { } body)
        {
            return;
        }

        if (!TryGetOptionalString(body, "stream_id", out var streamId) || streamId is null)
        {
            await BadRequestAsync(ctx, "stream_id is required.");
            return;
        }

        // §8.1.2.2: status is REQUIRED and one of enabled, paused, disabled; reason is an optional string.
        if (!TryGetOptionalString(body, "status", out var statusText) || SsfProtocol.ParseStatus(statusText) is not { } status)
        {
            await BadRequestAsync(ctx, "status must be one of enabled, paused or disabled.");
            return;
        }

        if (!TryGetOptionalString(body, "reason", out var reason))
        {
            await BadRequestAsync(ctx, "reason must be a string.");
            return;
        }

        var wasDisabled = false;

        if (await streams.FindAsync(streamId, receiver, ctx.RequestAborted) is not { } current
            || await streams.UpdateAsync(current, s =>
            {
                wasDisabled = s.Status == SsfStreamStatus.Disabled;
                s.Status = status;
                s.StatusReason = Truncate(reason, MaxDescriptionLength);
            }, ctx.RequestAborted) is not { } stream)
        {
            await ProblemResponses.NotFoundAsync(ctx, "This receiver has no stream with that stream_id.");
            return;
        }

        if (status == SsfStreamStatus.Disabled || wasDisabled)
        {
            // §8.1.2: a disabled stream transmits nothing and holds nothing for later; an event another instance queued
            // while it was disabled (from a stream list read before the change) goes too when it is enabled again.
            await streams.Store.ClearAsync(stream, ctx.RequestAborted);
        }

        LogStatusChanged(logger, stream.StreamId, receiver.ClientId, SsfProtocol.StatusName(status));
        if (status == SsfStreamStatus.Enabled)
        {
            // A push stream enabled again sends what it held while paused (SSF 1.0 §8.1.2), now.
            streams.NotifyDeliveryWork();
        }

        await WriteStatusAsync(ctx, stream);
    });

    /// <summary>The verification endpoint (SSF 1.0 §8.1.4.2): queues a verification event on the stream; 204.</summary>
    public Task VerifyAsync(HttpContext context) => EndpointInvoker.InvokeAsync(context, oauthErrors: false, async ctx =>
    {
        if (!HttpMethods.IsPost(ctx.Request.Method))
        {
            await ProblemResponses.MethodNotAllowedAsync(ctx, "POST");
            return;
        }

        if (await ReceiverAsync(ctx) is not { } receiver || await ReadObjectAsync(ctx) is not { } body)
        {
            return;
        }

        if (!TryGetOptionalString(body, "stream_id", out var streamId) || streamId is null)
        {
            await BadRequestAsync(ctx, "stream_id is required.");
            return;
        }

        if (!TryGetOptionalString(body, "state", out var state) || state is { Length: > MaxStateLength })
        {
            await BadRequestAsync(ctx, $"state must be a string of at most {MaxStateLength} characters.");
            return;
        }

        if (await streams.FindAsync(streamId, receiver, ctx.RequestAborted) is not { } stream)
        {
            await ProblemResponses.NotFoundAsync(ctx, "This receiver has no stream with that stream_id.");
            return;
        }

        // §8.1.4.2: 204 says the event is queued, not delivered. A disabled stream holds nothing (§8.1.2), so it is dropped.
        await streams.EnqueueVerificationAsync(stream, state, time.GetUtcNow(), ctx.RequestAborted);
        NoContent(ctx);
    });

    /// <summary>
    /// <c>POST /ssf/poll/{streamId}</c>: the stream's poll endpoint (RFC 8936; SSF 1.0 §6.1.2, the transmitter's URL).
    /// Acknowledgements (<c>ack</c>) and reported errors (<c>setErrs</c>) are applied first (RFC 8936 §2.4), then up to
    /// <c>maxEvents</c> of the oldest unacknowledged SETs are answered in <c>sets</c>, keyed by <c>jti</c>, with
    /// <c>moreAvailable</c> (RFC 8936 §2.3). Always answers at once: long polling is not offered in this version, which
    /// RFC 8936 §2.2 lets the transmitter decide (<c>returnImmediately</c> is read and accepted either way).
    /// </summary>
    public Task PollAsync(HttpContext context, string streamId) => EndpointInvoker.InvokeAsync(context, oauthErrors: false, async ctx =>
    {
        if (!HttpMethods.IsPost(ctx.Request.Method))
        {
            await ProblemResponses.MethodNotAllowedAsync(ctx, "POST");
            return;
        }

        if (await ReceiverAsync(ctx) is not { } receiver || await ReadObjectAsync(ctx, emptyIsObject: true) is not { } body)
        {
            return;
        }

        if (await streams.FindAsync(streamId, receiver, ctx.RequestAborted) is not { } stream)
        {
            await ProblemResponses.NotFoundAsync(ctx, "This receiver has no stream with that id.");
            return;
        }

        bool pushed;
        lock (stream.Gate)
        {
            pushed = stream.Push is not null;
        }

        if (pushed)
        {
            // One delivery method per stream (SSF 1.0 §8.1.1 delivery): polling a push stream would race the pushes and
            // break their order.
            await BadRequestAsync(ctx, "This stream is delivered by push (urn:ietf:rfc:8935); change its delivery to poll to poll it.");
            return;
        }

        // RFC 8936 §2.2: maxEvents, a non-negative integer (0: acknowledge only); capped by SharedSignals:MaxEventsPerPoll.
        var maxEvents = ssf.Value.MaxEventsPerPoll;
        if (JsonText.TryGetProperty(body, "maxEvents", out var max))
        {
            if (max.ValueKind != JsonValueKind.Number || !max.TryGetInt32(out var requested) || requested < 0)
            {
                await BadRequestAsync(ctx, "maxEvents must be a non-negative integer.");
                return;
            }

            maxEvents = Math.Min(requested, maxEvents);
        }

        if (JsonText.TryGetProperty(body, "returnImmediately", out var immediately) && immediately.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
        {
            await BadRequestAsync(ctx, "returnImmediately must be a boolean.");
            return;
        }

        var acknowledged = new HashSet<string>(StringComparer.Ordinal);
        if (JsonText.TryGetProperty(body, "ack", out var ack) && !TryReadStrings(ack, acknowledged))
        {
            await BadRequestAsync(ctx, "ack must be an array of jti strings.");
            return;
        }

        if (JsonText.TryGetProperty(body, "setErrs", out var errors))
        {
            if (errors.ValueKind != JsonValueKind.Object)
            {
                await BadRequestAsync(ctx, "setErrs must be an object keyed by jti.");
                return;
            }

            // RFC 8936 §2.4: a SET the receiver reports an error for is not delivered again; the error is logged for the
            // operator (its err code only: the description is the receiver's text).
            foreach (var error in errors.EnumerateObject())
            {
                acknowledged.Add(error.Name);
                LogSetRejected(logger, stream.StreamId, receiver.ClientId, error.Name, JsonText.GetStringOrNull(error.Value, "err") ?? "unspecified");
            }
        }

        var (batch, moreAvailable, _) = await streams.PollAsync(stream, acknowledged, maxEvents, ctx.RequestAborted);

        // Signed at first transmission and kept in the store, so that a redelivery, by any instance, is the same SET
        // (same jti, same bytes).
        foreach (var entry in batch)
        {
            if (entry.Set is null)
            {
                entry.Set = await signer.SignAsync(stream, entry, ctx.RequestAborted);
                await streams.Store.SaveSetAsync(stream, entry, ctx.RequestAborted);
            }
        }

        await OAuthResponses.WriteJsonAsync(ctx, 200, writer =>
        {
            writer.WriteStartObject("sets");
            foreach (var entry in batch)
            {
                writer.WriteString(entry.Jti, entry.Set);
            }

            writer.WriteEndObject();
            writer.WriteBoolean("moreAvailable", moreAvailable);
        });
    });

    private async Task CreateAsync(HttpContext context, RegisteredClient receiver, JsonElement body)
    {
        if (await ReadReceiverSuppliedAsync(context, body) is not { } supplied)
        {
            return;
        }

        if (await streams.CreateAsync(receiver, supplied.EventsRequested, supplied.Description, supplied.Push, context.RequestAborted) is not { } stream)
        {
            // §8.1.1.1: a transmitter that limits the streams per receiver answers 409; the receiver may GET its streams
            // and PATCH, PUT or DELETE one.
            await ProblemResponses.WriteAsync(context, StatusCodes.Status409Conflict, "Conflict",
                $"This receiver has {ssf.Value.MaxStreamsPerReceiver} streams already (SharedSignals:MaxStreamsPerReceiver); read them with GET, change or delete one.");
            return;
        }

        if (supplied.Push is not null)
        {
            streams.NotifyDeliveryWork();
        }

        LogStreamCreated(logger, stream.StreamId, receiver.ClientId);
        await WriteConfigurationAsync(context, StatusCodes.Status201Created, stream);
    }

    private async Task UpdateAsync(HttpContext context, RegisteredClient receiver, JsonElement body, bool replace)
    {
        // §8.1.1.3 and §8.1.1.4: stream_id is REQUIRED in the body.
        if (!TryGetOptionalString(body, "stream_id", out var streamId) || streamId is null)
        {
            await BadRequestAsync(context, "stream_id is required.");
            return;
        }

        if (await streams.FindAsync(streamId, receiver, context.RequestAborted) is not { } found)
        {
            await ProblemResponses.NotFoundAsync(context, "This receiver has no stream with that stream_id.");
            return;
        }

        if (await ReadReceiverSuppliedAsync(context, body) is not { } supplied)
        {
            return;
        }

        // Transmitter-supplied properties may be present but must match (events_delivered as it was before the change);
        // missing ones are ignored (§8.1.1.3, §8.1.1.4).
        string? mismatch;
        lock (found.Gate)
        {
            mismatch = TransmitterSuppliedMismatch(body, found);
        }

        if (mismatch is not null)
        {
            await BadRequestAsync(context, mismatch + " does not match the stream's value; transmitter-supplied properties cannot be changed.");
            return;
        }

        var updated = await streams.UpdateAsync(found, stream =>
        {
            if (replace)
            {
                // §8.1.1.4: a missing receiver-supplied property is deleted.
                stream.EventsRequested = supplied.EventsRequested;
                stream.Description = supplied.Description;
                SetDeliveryLocked(stream, supplied.Push);
            }
            else
            {
                // §8.1.1.3: only the receiver-supplied properties present change.
                if (supplied.HasEventsRequested)
                {
                    stream.EventsRequested = supplied.EventsRequested;
                }

                if (supplied.HasDescription)
                {
                    stream.Description = supplied.Description;
                }

                if (supplied.HasDelivery)
                {
                    SetDeliveryLocked(stream, supplied.Push);
                }
            }
        }, context.RequestAborted);
        if (updated is null)
        {
            await ProblemResponses.NotFoundAsync(context, "This receiver has no stream with that stream_id.");
            return;
        }

        streams.NotifyDeliveryWork();
        await WriteConfigurationAsync(context, StatusCodes.Status200OK, updated);
    }

    /// <summary>A new delivery starts afresh: a back-off earned by the old endpoint does not delay the new one.</summary>
    private static void SetDeliveryLocked(SsfStream stream, SsfPushDelivery? push)
    {
        if (stream.Push != push)
        {
            stream.Push = push;
            stream.PushFailures = 0;
            stream.PushRetryAt = null;
        }
    }

    /// <summary>The name of the first transmitter-supplied property present with another value than the stream's, or null.</summary>
    private string? TransmitterSuppliedMismatch(JsonElement body, SsfStream stream)
    {
        if (JsonText.TryGetProperty(body, "iss", out var iss) && JsonText.GetStringOrNull(iss) != service.Value.IssuerOrThrow)
        {
            return "iss";
        }

        if (JsonText.TryGetProperty(body, "aud", out var aud) && !SameStrings(aud, stream.Audiences, allowSingleString: true))
        {
            return "aud";
        }

        if (JsonText.TryGetProperty(body, "events_supported", out var supported) && !SameStrings(supported, SsfProtocol.EventsSupported, allowSingleString: false))
        {
            return "events_supported";
        }

        if (JsonText.TryGetProperty(body, "events_delivered", out var delivered) && !SameStrings(delivered, stream.EventsDelivered, allowSingleString: false))
        {
            return "events_delivered";
        }

        return null;
    }

    private sealed record ReceiverSupplied(
        IReadOnlyList<string>? EventsRequested, bool HasEventsRequested, string? Description, bool HasDescription, SsfPushDelivery? Push, bool HasDelivery);

    /// <summary>Longest push <c>endpoint_url</c> and <c>authorization_header</c> a receiver may give.</summary>
    internal const int MaxPushValueLength = 2048;

    /// <summary>
    /// The receiver-supplied properties of a stream configuration (§8.1.1): <c>events_requested</c> (unknown URIs are kept
    /// and ignored for delivery, as the section requires), <c>description</c> (truncated) and <c>delivery</c>: poll
    /// (§6.1.2; absent means poll, §8.1.1.1) or push (§6.1.1, RFC 8935) with the receiver's <c>endpoint_url</c> and an
    /// optional <c>authorization_header</c>; any other method is refused with 400 (§8.1.1.1). Writes the 400 and returns
    /// null for anything malformed.
    /// </summary>
    private async Task<ReceiverSupplied?> ReadReceiverSuppliedAsync(HttpContext context, JsonElement body)
    {
        List<string>? requested = null;
        var hasRequested = JsonText.TryGetProperty(body, "events_requested", out var requestedElement);
        if (hasRequested)
        {
            requested = [];
            if (!TryReadStrings(requestedElement, requested) || requested.Count > 64)
            {
                await BadRequestAsync(context, "events_requested must be an array of at most 64 event type URIs.");
                return null;
            }
        }

        if (!TryGetOptionalString(body, "description", out var description))
        {
            await BadRequestAsync(context, "description must be a string.");
            return null;
        }

        SsfPushDelivery? push = null;
        var hasDelivery = JsonText.TryGetProperty(body, "delivery", out var delivery);
        if (hasDelivery)
        {
            if (delivery.ValueKind != JsonValueKind.Object || !TryGetOptionalString(delivery, "method", out var deliveryMethod))
            {
                await BadRequestAsync(context, "delivery must be an object whose method is a string.");
                return null;
            }

            if (deliveryMethod == SsfProtocol.PushDeliveryMethod)
            {
                if (ReadPushDelivery(delivery, out var error) is not { } read)
                {
                    await BadRequestAsync(context, error);
                    return null;
                }

                push = read;
            }
            else if (deliveryMethod is not null && deliveryMethod != SsfProtocol.PollDeliveryMethod)
            {
                await BadRequestAsync(context, $"delivery.method must be {SsfProtocol.PushDeliveryMethod} (push) or {SsfProtocol.PollDeliveryMethod} (poll).");
                return null;
            }
        }

        return new ReceiverSupplied(requested, hasRequested, Truncate(description, MaxDescriptionLength), JsonText.TryGetProperty(body, "description", out _), push, hasDelivery);
    }

    /// <summary>
    /// A push delivery's <c>endpoint_url</c> (REQUIRED for push, SSF 1.0 §6.1.1): an absolute https URL without user
    /// information or fragment; http only to a loopback address and only in Development (a receiver on the developer's
    /// machine), since the SETs and the authorization header must not cross a network in the clear (RFC 8935 §5.1).
    /// <c>authorization_header</c> (SSF 1.0 §8.1.1): optional, visible ASCII and spaces only (it becomes a header line
    /// as given).
    /// </summary>
    private SsfPushDelivery? ReadPushDelivery(JsonElement delivery, out string error)
    {
        error = string.Empty;
        if (!TryGetOptionalString(delivery, "endpoint_url", out var endpoint) || endpoint is not { Length: > 0 and <= MaxPushValueLength }
            || !Uri.TryCreate(endpoint, UriKind.Absolute, out var url) || url.UserInfo.Length > 0 || url.Fragment.Length > 0
            || !(url.Scheme == Uri.UriSchemeHttps || (url.Scheme == Uri.UriSchemeHttp && url.IsLoopback && environment.IsDevelopment())))
        {
            error = "Push delivery needs delivery.endpoint_url, an absolute https URL without user information or fragment (http to a loopback address in Development only).";
            return null;
        }

        if (!TryGetOptionalString(delivery, "authorization_header", out var authorization)
            || authorization is { Length: 0 or > MaxPushValueLength }
            || (authorization is not null && authorization.Any(c => c is < ' ' or > '~')))
        {
            error = $"delivery.authorization_header must be a non-empty string of at most {MaxPushValueLength} visible ASCII characters.";
            return null;
        }

        return new SsfPushDelivery(url, authorization);
    }

    private async Task ReadStreamsAsync(HttpContext context, RegisteredClient receiver)
    {
        // §8.1.1.2: with stream_id, that stream (404 if this receiver has none by that id); without, the list of this
        // receiver's streams, empty when it has none.
        if (context.Request.Query.ContainsKey("stream_id"))
        {
            if (await streams.FindAsync(SingleQuery(context, "stream_id"), receiver, context.RequestAborted) is not { } stream)
            {
                await ProblemResponses.NotFoundAsync(context, "This receiver has no stream with that stream_id.");
                return;
            }

            await WriteConfigurationAsync(context, StatusCodes.Status200OK, stream);
            return;
        }

        await OAuthResponses.WriteJsonArrayAsync(context, StatusCodes.Status200OK, await streams.ListForAsync(receiver, context.RequestAborted), (writer, all) =>
        {
            foreach (var stream in all)
            {
                writer.WriteStartObject();
                WriteConfigurationMembers(writer, stream);
                writer.WriteEndObject();
            }
        });
    }

    private Task WriteConfigurationAsync(HttpContext context, int status, SsfStream stream) =>
        OAuthResponses.WriteJsonAsync(context, status, writer => WriteConfigurationMembers(writer, stream));

    /// <summary>SSF 1.0 §8.1.1 stream configuration.</summary>
    private void WriteConfigurationMembers(Utf8JsonWriter writer, SsfStream stream)
    {
        lock (stream.Gate)
        {
            writer.WriteString("stream_id", stream.StreamId);
            writer.WriteString("iss", service.Value.IssuerOrThrow);
            writer.WriteStringOrArray("aud", stream.Audiences);
            writer.WriteStringArray("events_supported", SsfProtocol.EventsSupported);
            if (stream.EventsRequested is { } requested)
            {
                writer.WriteStringArray("events_requested", requested);
            }

            writer.WriteStringArray("events_delivered", stream.EventsDelivered);
            writer.WriteStartObject("delivery");
            if (stream.Push is { } push)
            {
                // §6.1.1: the receiver's URL. Its authorization_header is not echoed: it is a credential, and the
                // receiver that set it has it.
                writer.WriteString("method", SsfProtocol.PushDeliveryMethod);
                writer.WriteString("endpoint_url", push.EndpointUrl.OriginalString);
            }
            else
            {
                writer.WriteString("method", SsfProtocol.PollDeliveryMethod);
                // §6.1.2: the poll URL is the transmitter's, one per stream.
                writer.WriteString("endpoint_url", service.Value.IssuerOrThrow.TrimEnd('/') + "/" + PollRoutePrefix + stream.StreamId);
            }

            writer.WriteEndObject();
            if (stream.Description is not null)
            {
                writer.WriteString("description", stream.Description);
            }

            // A member of our own (a receiver ignores members it does not know): how many events of this stream will never
            // be delivered (the outbox bound, or queuing that failed). SSF has no signal for such a gap; the library
            // receiver reads it with each verification and falls back to bounded staleness when it grows.
            writer.WriteNumber("tokenservice_events_dropped", stream.Dropped);
        }
    }

    private static Task WriteStatusAsync(HttpContext context, SsfStream stream)
    {
        SsfStreamStatus status;
        string? reason;
        lock (stream.Gate)
        {
            status = stream.Status;
            reason = stream.StatusReason;
        }

        return OAuthResponses.WriteJsonAsync(context, 200, writer =>
        {
            writer.WriteString("stream_id", stream.StreamId);
            writer.WriteString("status", SsfProtocol.StatusName(status));
            if (reason is not null)
            {
                writer.WriteString("reason", reason);
            }
        });
    }

    /// <summary>
    /// Authenticates the receiver: a resource-server client over HTTP Basic, charged to the client (or, failing that, to
    /// its address) like the other server-to-server routes. 404 when the transmitter is off, 401 without valid
    /// credentials (SSF 1.0 §8.1.1), 403 for a client that is not a resource server (it may not have streams).
    /// </summary>
    private async Task<RegisteredClient?> ReceiverAsync(HttpContext context)
    {
        if (!ssf.Value.Enabled)
        {
            await NotEnabledAsync(context);
            return null;
        }

        var auth = authenticator.Authenticate(context.Request, NoForm);
        var charged = auth.Client is { IsPublic: false } server
            ? limiter.TryAcquireForClient(RateLimitedRoute.SharedSignals, server, out var retryAfter)
            : limiter.TryAcquireForAddress(RateLimitedRoute.SharedSignals, context, out retryAfter);
        if (!charged || auth.BackedOff)
        {
            await RateLimitResponses.WriteAsync(context, oauthErrors: false, charged ? auth.RetryAfter!.Value : retryAfter);
            return null;
        }

        if (!auth.Succeeded || !auth.UsedBasic)
        {
            context.Response.Headers.WWWAuthenticate = "Basic realm=\"token-service\", charset=\"UTF-8\"";
            await ProblemResponses.WriteAsync(context, StatusCodes.Status401Unauthorized, "Unauthorized", "Authenticate with the receiver's client id and secret (HTTP Basic).");
            return null;
        }

        if (auth.Client!.Type != ClientType.ResourceServer)
        {
            await ProblemResponses.WriteAsync(context, StatusCodes.Status403Forbidden, "Forbidden", "Only resource servers may manage event streams.");
            return null;
        }

        return auth.Client;
    }

    /// <summary>The JSON object of the body, or null after answering 400 or 413. An empty body is an empty object only where allowed.</summary>
    private static async Task<JsonElement?> ReadObjectAsync(HttpContext context, bool emptyIsObject = false)
    {
        if (context.Request.ContentLength > MaxBodyBytes)
        {
            await ProblemResponses.WriteAsync(context, StatusCodes.Status413PayloadTooLarge, "Payload Too Large", "Bodies are at most 64 KB.");
            return null;
        }

        using var buffer = new MemoryStream();
        var chunk = new byte[8 * 1024];
        int read;
        while ((read = await context.Request.Body.ReadAsync(chunk, context.RequestAborted)) > 0)
        {
            if (buffer.Length + read > MaxBodyBytes)
            {
                context.Response.Headers.Connection = "close";
                await ProblemResponses.WriteAsync(context, StatusCodes.Status413PayloadTooLarge, "Payload Too Large", "Bodies are at most 64 KB.");
                return null;
            }

            buffer.Write(chunk, 0, read);
        }

        if (buffer.Length == 0 && emptyIsObject)
        {
            return JsonDocument.Parse("{}").RootElement.Clone();
        }

        // Valid UTF-8 JSON whose every string decodes (JsonText.IsWellFormed), so no lookup below can throw for its text.
        var bytes = buffer.GetBuffer().AsSpan(0, (int)buffer.Length);
        if (!JsonText.IsWellFormed(bytes, maxDepth: 16))
        {
            await BadRequestAsync(context, "The body must be a JSON object.");
            return null;
        }

        using var document = JsonDocument.Parse(buffer.GetBuffer().AsMemory(0, (int)buffer.Length), new JsonDocumentOptions { MaxDepth = 16 });
        if (document.RootElement.ValueKind != JsonValueKind.Object)
        {
            await BadRequestAsync(context, "The body must be a JSON object.");
            return null;
        }

        return document.RootElement.Clone();
    }

    /// <summary>False when the member is present and not a string; its value (null when absent) otherwise.</summary>
    private static bool TryGetOptionalString(JsonElement obj, string name, out string? value)
    {
        value = null;
        return !JsonText.TryGetProperty(obj, name, out var element) || JsonText.TryGetString(element, out value);
    }

    private static bool TryReadStrings(JsonElement array, ICollection<string> into)
    {
        if (array.ValueKind != JsonValueKind.Array || array.GetArrayLength() > 1000)
        {
            return false;
        }

        foreach (var item in array.EnumerateArray())
        {
            if (!JsonText.TryGetString(item, out var value))
            {
                return false;
            }

            into.Add(value!);
        }

        return true;
    }

    private static bool SameStrings(JsonElement element, IReadOnlyList<string> expected, bool allowSingleString)
    {
        if (allowSingleString && element.ValueKind == JsonValueKind.String)
        {
            return expected.Count == 1 && JsonText.GetStringOrNull(element) == expected[0];
        }

        var values = new List<string>();
        return TryReadStrings(element, values) && values.ToHashSet(StringComparer.Ordinal).SetEquals(expected);
    }

    private static string? SingleQuery(HttpContext context, string name) =>
        context.Request.Query.TryGetValue(name, out var values) && values.Count == 1 ? values[0] : null;

    private static string? Truncate(string? value, int length) => value is { Length: > 0 } && value.Length > length ? value[..length] : value;

    private static void NoContent(HttpContext context)
    {
        context.Response.StatusCode = StatusCodes.Status204NoContent;
        context.Response.Headers.CacheControl = "no-store";
    }

    private static Task BadRequestAsync(HttpContext context, string detail) =>
        ProblemResponses.WriteAsync(context, StatusCodes.Status400BadRequest, "Bad Request", detail);

    private static Task NotEnabledAsync(HttpContext context) =>
        ProblemResponses.NotFoundAsync(context, "The Shared Signals transmitter is not enabled (SharedSignals:Enabled).");

    [LoggerMessage(EventId = 2203, Level = LogLevel.Information, Message = "Stream {StreamId} created for receiver {ClientId}.")]
    private static partial void LogStreamCreated(ILogger logger, string streamId, string clientId);

    [LoggerMessage(EventId = 2204, Level = LogLevel.Information, Message = "A stream of receiver {ClientId} deleted.")]
    private static partial void LogStreamDeleted(ILogger logger, string clientId);

    [LoggerMessage(EventId = 2205, Level = LogLevel.Information, Message = "Stream {StreamId} of receiver {ClientId} is now {Status}.")]
    private static partial void LogStatusChanged(ILogger logger, string streamId, string clientId, string status);

    [LoggerMessage(EventId = 2206, Level = LogLevel.Warning, Message = "Receiver {ClientId} reported an error ({Error}) for SET {Jti} of stream {StreamId}; it is not sent again.")]
    private static partial void LogSetRejected(ILogger logger, string streamId, string clientId, string jti, string error);
}
