using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;
using TokenService.Configuration;
using TokenService.Events;
using TokenService.Http;
using TokenService.Jwt;
using TokenService.Protocol;

namespace TokenService.Endpoints;

/// <summary>
/// <c>POST /events/idp</c>: Event Grid webhook (Event Grid schema and CloudEvents 1.0, single or batch) with the
/// subscription-validation handshake; <c>OPTIONS /events/idp</c>: the CloudEvents abuse-protection handshake;
/// <c>POST /events/ssf</c>: OpenID Shared Signals push delivery (RFC 8935). Deliveries to /events/idp carry
/// <c>Events:WebhookSecret</c> in the <c>X-Webhook-Key</c> header (an Event Grid static delivery attribute with
/// <c>isSecret: true</c>), or as <c>?key=</c> as a fallback; SETs are authenticated by their signature. Nothing here
/// logs the request's URL or query string.
/// </summary>
public sealed class IdpEventsEndpoint(IdpEventProcessor processor, SecurityEventTokenValidator securityEvents, IOptions<EventsOptions> options, RequestRateLimiter limiter)
{
    public Task HandleAsync(HttpContext context) => EndpointInvoker.InvokeAsync(context, oauthErrors: false, async ctx =>
    {
        if (!KeyMatches(ctx.Request))
        {
            // Deliveries without the key are charged to their source address (key guessing); Event Grid's own
            // deliveries, which carry it, are not limited here: throttling them would delay revocations.
            if (!limiter.TryAcquireForAddress(RateLimitedRoute.IdpEvents, ctx, out var retryAfter))
            {
                await RateLimitResponses.WriteAsync(ctx, oauthErrors: false, retryAfter);
                return;
            }

            await ProblemResponses.WriteAsync(ctx, StatusCodes.Status401Unauthorized, "Unauthorized", "The delivery does not carry the webhook key.");
            return;
        }

        if (HttpMethods.IsOptions(ctx.Request.Method))
        {
            // CloudEvents webhook abuse protection (HTTP 1.1 Web Hooks for Event Delivery §4.1): the origin is a DNS name,
            // echoed in WebHook-Allowed-Origin. Anything else (control or non-ASCII characters, which Kestrel refuses to
            // write into a response header, lists, very long values) is refused here rather than failing as the response starts.
            var values = ctx.Request.Headers["WebHook-Request-Origin"];
            var origin = values.Count == 1 ? values[0] : null;
            if (string.IsNullOrEmpty(origin) || !IsOriginName(origin))
            {
                await ProblemResponses.WriteAsync(ctx, StatusCodes.Status400BadRequest, "Bad Request", "WebHook-Request-Origin must be one DNS name.");
                return;
            }

            ctx.Response.Headers["WebHook-Allowed-Origin"] = origin;
            ctx.Response.Headers["WebHook-Allowed-Rate"] = "*";
            ctx.Response.Headers.Allow = "POST, OPTIONS";
            ctx.Response.StatusCode = StatusCodes.Status200OK;
            return;
        }

        if (!HttpMethods.IsPost(ctx.Request.Method))
        {
            await ProblemResponses.MethodNotAllowedAsync(ctx, "POST, OPTIONS");
            return;
        }

        var body = await ReadBodyAsync(ctx);
        if (body is null)
        {
            return;
        }

        IReadOnlyList<IdpEventEnvelope> events;
        try
        {
            events = IdpEventEnvelopeReader.Read(body);
        }
        catch (MalformedEventException ex)
        {
            await ProblemResponses.WriteAsync(ctx, StatusCodes.Status400BadRequest, "Bad Request", ex.Message);
            return;
        }

        // Event Grid schema subscription validation: echo the code (synchronous handshake). Event Grid sends the
        // validation event alone; a batch that mixes it with other events is refused whole rather than acknowledged
        // with those events unprocessed.
        var validation = events.FirstOrDefault(e => e.Type == IdpEventTypes.SubscriptionValidation);
        if (validation is not null)
        {
            if (events.Count > 1)
            {
                await ProblemResponses.WriteAsync(ctx, StatusCodes.Status400BadRequest, "Bad Request",
                    "A subscription-validation event is delivered alone; this batch also holds other events and is refused whole.");
                return;
            }

            // A validationCode that is not a string, or not Unicode text ("\ud800"), is no code to echo.
            if (JsonText.GetStringOrNull(validation.Data, "validationCode") is not { } code)
            {
                await ProblemResponses.WriteAsync(ctx, StatusCodes.Status400BadRequest, "Bad Request", "The validation event has no validationCode.");
                return;
            }

            await OAuthResponses.WriteJsonAsync(ctx, 200, w => w.WriteString("validationResponse", code));
            return;
        }

        IdpEventBatchResult result;
        try
        {
            result = await processor.ProcessAsync(events, ctx.RequestAborted);
        }
        catch (MalformedEventException ex)
        {
            await ProblemResponses.WriteAsync(ctx, StatusCodes.Status400BadRequest, "Bad Request", ex.Message);
            return;
        }

        await OAuthResponses.WriteJsonAsync(ctx, 200, w =>
        {
            w.WriteNumber("revoked", result.Revoked);
            w.WriteNumber("duplicates", result.Duplicates);
            w.WriteNumber("ignored", result.Ignored);
            w.WriteNumber("sessions_ended", result.SessionsEnded);
        });
    });

    /// <summary>RFC 8935 push: body is one SET (<c>application/secevent+jwt</c>); 202 when accepted.</summary>
    public Task HandleSsfPushAsync(HttpContext context) => EndpointInvoker.InvokeAsync(context, oauthErrors: false, async ctx =>
    {
        if (!HttpMethods.IsPost(ctx.Request.Method))
        {
            await ProblemResponses.MethodNotAllowedAsync(ctx, "POST");
            return;
        }

        // A push is authenticated only by the SET's signature, checked after it is read: every push is charged to its
        // source address before anything is read or verified.
        if (!limiter.TryAcquireForAddress(RateLimitedRoute.SsfEvents, ctx, out var retryAfter))
        {
            await RateLimitResponses.WriteAsync(ctx, oauthErrors: false, retryAfter);
            return;
        }

        if (!(ctx.Request.ContentType?.StartsWith("application/secevent+jwt", StringComparison.OrdinalIgnoreCase) ?? false))
        {
            await SetErrorAsync(ctx, SecurityEventErrors.InvalidRequest, "The body must be application/secevent+jwt.");
            return;
        }

        if (!securityEvents.IsConfigured)
        {
            await SetErrorAsync(ctx, SecurityEventErrors.InvalidIssuer, "No Shared Signals transmitter is configured.");
            return;
        }

        var body = await ReadBodyAsync(ctx);
        if (body is null)
        {
            return;
        }

        // The envelope id only names the delivery in logs; the SET is deduplicated by its iss and jti (RFC 8417 §2.2).
        var set = Encoding.ASCII.GetString(body).Trim();
        var envelope = new IdpEventEnvelope("set:" + Convert.ToHexString(SHA256.HashData(body))[..32], IdpEventTypes.SecurityEvent, "ssf-push", null,
            System.Text.Json.JsonDocument.Parse(System.Text.Json.JsonSerializer.Serialize(set)).RootElement.Clone(), "application/secevent+jwt");
        try
        {
            await processor.ProcessAsync([envelope], ctx.RequestAborted);
        }
        catch (MalformedEventException ex)
        {
            var rejected = ex.InnerException as SecurityEventRejectedException;
            await SetErrorAsync(ctx, rejected?.Error ?? SecurityEventErrors.InvalidRequest, rejected?.Message ?? ex.Message);
            return;
        }

        ctx.Response.StatusCode = StatusCodes.Status202Accepted;
    });

    private static Task SetErrorAsync(HttpContext context, string error, string description) =>
        OAuthResponses.WriteJsonAsync(context, StatusCodes.Status400BadRequest, w =>
        {
            w.WriteString("err", error);
            w.WriteString("description", description);
        });

    private static bool IsOriginName(string origin) =>
        origin.Length <= 255 && origin.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_' or ':');

    private bool KeyMatches(HttpRequest request)
    {
        var secret = options.Value.WebhookSecret;
        if (string.IsNullOrEmpty(secret))
        {
            return true; // Development only: the validator requires a secret elsewhere.
        }

        // The header first: a secret in the URL ends up in request logs and Application Insights request telemetry.
        // ?key= stays as a fallback for subscriptions created before the header. Both are compared in constant time.
        var key = request.Headers.TryGetValue(EventsOptions.WebhookKeyHeader, out var header) ? header : request.Query["key"];
        return key.Count == 1 && key[0] is { } value
            && CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(value)), SHA256.HashData(Encoding.UTF8.GetBytes(secret)));
    }

    private static async Task<byte[]?> ReadBodyAsync(HttpContext context)
    {
        if (context.Request.ContentLength > IdpEventEnvelopeReader.MaxBodyBytes)
        {
            await ProblemResponses.WriteAsync(context, StatusCodes.Status413PayloadTooLarge, "Payload Too Large", "Deliveries are at most 1 MB.");
            return null;
        }

        using var buffer = new MemoryStream();
        var chunk = new byte[16 * 1024];
        int read;
        while ((read = await context.Request.Body.ReadAsync(chunk, context.RequestAborted)) > 0)
        {
            if (buffer.Length + read > IdpEventEnvelopeReader.MaxBodyBytes)
            {
                context.Response.Headers.Connection = "close";
                await ProblemResponses.WriteAsync(context, StatusCodes.Status413PayloadTooLarge, "Payload Too Large", "Deliveries are at most 1 MB.");
                return null;
            }

            buffer.Write(chunk, 0, read);
        }

        return buffer.ToArray();
    }
}
