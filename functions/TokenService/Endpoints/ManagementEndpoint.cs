using Microsoft.AspNetCore.Http;
using TokenService.Clients;
using TokenService.Diagnostics;
using TokenService.Http;
using TokenService.Keys;
using TokenService.Sessions;

namespace TokenService.Endpoints;

/// <summary>
/// <c>POST /management/users/revoke</c> (form <c>user_id</c>) and <c>POST /management/users/{userId}/revoke</c>: force
/// logout of every session of a user (admin client, HTTP Basic). Not under <c>/admin</c>: the Azure Functions host
/// refuses routes that start with <c>admin</c> or <c>runtime</c>.
/// </summary>
public sealed class ManagementEndpoint(
    ClientAuthenticator authenticator, IUserSessionRevoker revoker, ISigningKeyService keys, RequestRateLimiter limiter, IAuditSink audit, TokenServiceMetrics metrics,
    ISigningKeyRevokedSink? keyRevokedSink = null)
{
    /// <summary>Route template of the force-logout route that names the user in the path (both hosts).</summary>
    public const string RevokeUserRoute = "management/users/{userId}/revoke";

    /// <summary>
    /// Route template of the force-logout route that names the user in the form body (<c>user_id</c>, both hosts):
    /// one segment fewer than <see cref="RevokeUserRoute"/>, so the two never match the same path.
    /// </summary>
    public const string RevokeUserByFormRoute = "management/users/revoke";

    /// <summary>Route template of the rotate-now route (both hosts).</summary>
    public const string RotateKeysRoute = "management/keys/rotate";

    /// <summary>Route template of the key revocation route (both hosts).</summary>
    public const string RevokeKeyRoute = "management/keys/{kid}/revoke";

    /// <summary>
    /// <c>POST /management/keys/rotate</c> (form or query <c>immediate=true</c> optional): key compromise response,
    /// a new key now, published ahead of use, or signing at once.
    /// </summary>
    public Task RotateKeysAsync(HttpContext context) => EndpointInvoker.InvokeAsync(context, oauthErrors: false, async ctx =>
    {
        if (await AuthorizeAdminAsync(ctx) is not { } admin)
        {
            return;
        }

        var immediate = ctx.Request.Query["immediate"].ToString();
        if (ctx.Request.HasFormContentType)
        {
            var parsed = await FormRequest.ReadAsync(ctx.Request, ctx.RequestAborted);
            if (parsed.Form is null)
            {
                await ProblemResponses.WriteAsync(ctx, parsed.Status, "Bad Request", parsed.Error!);
                return;
            }

            immediate = FormRequest.Get(parsed.Form, "immediate") ?? immediate;
        }

        if (immediate is not ("" or "true" or "false"))
        {
            await ProblemResponses.WriteAsync(ctx, StatusCodes.Status400BadRequest, "Bad Request", "immediate must be true or false.");
            return;
        }

        KeyRotationResult result;
        try
        {
            result = await keys.RotateNowAsync(immediate == "true", ctx.RequestAborted);
        }
        catch (KeyLimitReachedException limit)
        {
            audit.Record(new AuditEvent(AuditEventKind.KeyRotated, AuditEvent.AdminActor(admin.ClientId), "refused", ClientId: admin.ClientId, Reason: limit.Message));
            await WriteKeyLimitAsync(ctx, limit);
            return;
        }

        audit.Record(new AuditEvent(AuditEventKind.KeyRotated, AuditEvent.AdminActor(admin.ClientId), result.Changed ? "changed" : "no_change", ClientId: admin.ClientId, Reason: result.Summary));
        await WriteKeysResultAsync(ctx, result);
    });

    /// <summary>
    /// <c>POST /management/keys/{kid}/revoke</c>: the key leaves the JWKS at once and its tokens are refused; when it
    /// was signing, a new key signs from now on; sessions survive (their next refresh is signed by the new key).
    /// </summary>
    public Task RevokeKeyAsync(HttpContext context, string routeKid) => EndpointInvoker.InvokeAsync(context, oauthErrors: false, async ctx =>
    {
        if (await AuthorizeAdminAsync(ctx) is not { } admin)
        {
            return;
        }

        var kid = RequestPath.Segment(ctx, 2) ?? routeKid;
        if (string.IsNullOrEmpty(kid) || kid.Length > 128 || !kid.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_'))
        {
            // Our kids are RFC 7638 thumbprints: base64url of a SHA-256 digest.
            await ProblemResponses.WriteAsync(ctx, StatusCodes.Status400BadRequest, "Bad Request", "The kid is not a key id of this service.");
            return;
        }

        var result = await keys.RevokeAsync(kid, ctx.RequestAborted);
        audit.Record(new AuditEvent(AuditEventKind.KeyRevoked, AuditEvent.AdminActor(admin.ClientId), result.Changed ? "revoked" : "no_change", ClientId: admin.ClientId, Reason: result.Summary));
        if (!result.Changed)
        {
            await ProblemResponses.WriteAsync(ctx, StatusCodes.Status404NotFound, "Not Found", "No published key has this kid (unknown, or already revoked).");
            return;
        }

        // Once the key is out of the JWKS, never before: every Shared Signals receiver drops it and refetches the JWKS now.
        keyRevokedSink?.SigningKeyRevoked(kid);
        await WriteKeysResultAsync(ctx, result);
    });

    /// <summary>
    /// 409 (RFC 9110 §15.5.10: the request conflicts with the key set's state) as RFC 9457 problem details saying how to
    /// make room: revoke a retired key, or wait until one leaves the JWKS.
    /// </summary>
    private static Task WriteKeyLimitAsync(HttpContext ctx, KeyLimitReachedException limit)
    {
        var wait = limit.NextRemoval is { } at
            ? $" or wait until {at.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture)}, when the next retired key leaves the JWKS"
            : " or wait until retired keys expire";
        var detail = $"Rotating now would publish {limit.Published} signing keys, more than Keys:MaxPublishedKeys ({limit.Limit}). "
            + $"Revoke a retired key (POST /management/keys/{{kid}}/revoke; its tokens are then refused){wait}, then rotate again.";
        return ProblemResponses.WriteAsync(ctx, StatusCodes.Status409Conflict, "Conflict", detail, writer =>
        {
            writer.WriteNumber("published_keys", limit.Published);
            writer.WriteNumber("max_published_keys", limit.Limit);
            if (limit.NextRemoval is { } next)
            {
                writer.WriteString("next_removal", next);
            }

            writer.WriteStartArray("retired_kids");
            foreach (var kid in limit.RetiredKids)
            {
                writer.WriteStringValue(kid);
            }

            writer.WriteEndArray();
        });
    }

    private async Task WriteKeysResultAsync(HttpContext ctx, KeyRotationResult result)
    {
        var set = await keys.GetKeySetAsync(ctx.RequestAborted);
        await OAuthResponses.WriteJsonAsync(ctx, 200, writer =>
        {
            writer.WriteBoolean("changed", result.Changed);
            writer.WriteString("summary", result.Summary);
            writer.WriteString("active_kid", set.Active?.Kid);
            writer.WriteStartArray("keys");
            foreach (var key in set.Published)
            {
                writer.WriteStartObject();
                writer.WriteString("kid", key.Kid);
                writer.WriteString("state", key.State.ToString().ToLowerInvariant());
                writer.WriteEndObject();
            }

            writer.WriteEndArray();
        });
    }

    /// <summary>The authenticated admin client, or null when the request was answered (405, 429, 401).</summary>
    private async Task<RegisteredClient?> AuthorizeAdminAsync(HttpContext ctx)
    {
        if (!HttpMethods.IsPost(ctx.Request.Method))
        {
            await ProblemResponses.MethodNotAllowedAsync(ctx, "POST");
            return null;
        }

        // docs/api.md, "Management": requests with a browser Origin are refused, on every management route.
        // Management clients are servers (an operator's script or back end), which send no Origin; browsers send one
        // with every POST (Fetch standard, "append a request Origin header"), so a present Origin, whatever its value
        // ("null" included), means a page is driving the request, perhaps with Basic credentials the browser holds.
        // Refused before the credentials are read: nothing is compared, counted or changed.
        if (ctx.Request.Headers.Origin.Count > 0)
        {
            await ProblemResponses.WriteAsync(ctx, StatusCodes.Status403Forbidden, "Forbidden", "Management routes are for servers: requests carrying an Origin header are refused.");
            return null;
        }

        // Request limits before the store (docs/security.md): an authenticated admin is charged as a client, so that an
        // incident's bulk force-logout from one workstation is not read as an attack from its address; anything else
        // is charged to its source address, and an admin id in its failed-authentication back-off gets 429.
        var auth = authenticator.Authenticate(ctx.Request, new Dictionary<string, Microsoft.Extensions.Primitives.StringValues>());
        var charged = auth.Client is { Type: ClientType.Admin } admin && auth.UsedBasic
            ? limiter.TryAcquireForClient(RateLimitedRoute.Management, admin, out var retryAfter)
            : limiter.TryAcquireForAddress(RateLimitedRoute.Management, ctx, out retryAfter);
        if (!charged || auth.BackedOff)
        {
            await RateLimitResponses.WriteAsync(ctx, oauthErrors: false, charged ? auth.RetryAfter!.Value : retryAfter);
            return null;
        }

        if (!auth.Succeeded || !auth.UsedBasic || auth.Client!.Type != ClientType.Admin)
        {
            ctx.Response.Headers.WWWAuthenticate = "Basic realm=\"token-service-management\", charset=\"UTF-8\"";
            await ProblemResponses.WriteAsync(ctx, StatusCodes.Status401Unauthorized, "Unauthorized", "Admin client credentials (HTTP Basic) are required.");
            return null;
        }

        return auth.Client;
    }

    /// <summary>
    /// Force logout, the user named in the path. <paramref name="routeUserId"/> is the host's route value; the user id
    /// is read again from the raw request target where the host exposes it, because routing leaves <c>%2F</c> encoded
    /// (RFC 3986 §2.1: a percent-encoded octet in a segment is data, so an id may hold <c>/</c>, <c>%</c>, <c>+</c>).
    /// A path is not always delivered as the client wrote it: the Functions host forwards to the worker a URL that it
    /// rebuilds from its decoded path, in which <c>%2F</c> stayed encoded and its <c>%</c> is then escaped again, so
    /// the worker reads <c>a%2Fb</c> for a client's <c>a/b</c>. An id that still holds a percent-encoded
    /// octet after its one decoding may therefore have been altered in transit; it is refused on both hosts with a
    /// problem that names the form route, never answered for another user.
    /// </summary>
    public Task RevokeUserAsync(HttpContext context, string routeUserId) => EndpointInvoker.InvokeAsync(context, oauthErrors: false, async ctx =>
    {
        if (await AuthorizeAdminAsync(ctx) is not { } admin)
        {
            return;
        }

        var userId = RequestPath.Segment(ctx, 2) ?? routeUserId;
        if (RequestPath.HoldsPercentEncoding(userId))
        {
            await ProblemResponses.WriteAsync(ctx, StatusCodes.Status400BadRequest, "Bad Request",
                "The user id in the path still holds a percent-encoded octet after decoding: a proxy may have re-encoded it (the Functions host does so with %2F), "
                + "or it was encoded twice. Name the user exactly with POST /" + RevokeUserByFormRoute + " and the form field user_id.",
                writer => writer.WriteString("form_route", "/" + RevokeUserByFormRoute));
            return;
        }

        await RevokeUserSessionsAsync(ctx, admin, userId);
    });

    /// <summary>
    /// Force logout, the user named by the form field <c>user_id</c> (<c>application/x-www-form-urlencoded</c>). A body
    /// reaches the endpoint as the client sent it through every proxy, so this route names any valid user id exactly.
    /// </summary>
    public Task RevokeUserByFormAsync(HttpContext context) => EndpointInvoker.InvokeAsync(context, oauthErrors: false, async ctx =>
    {
        if (await AuthorizeAdminAsync(ctx) is not { } admin)
        {
            return;
        }

        var parsed = await FormRequest.ReadAsync(ctx.Request, ctx.RequestAborted);
        if (parsed.Form is null)
        {
            await ProblemResponses.WriteAsync(ctx, parsed.Status, "Bad Request", parsed.Error!);
            return;
        }

        if (FormRequest.Get(parsed.Form, "user_id") is not { } userId)
        {
            await ProblemResponses.WriteAsync(ctx, StatusCodes.Status400BadRequest, "Bad Request", "The form field user_id is required.");
            return;
        }

        await RevokeUserSessionsAsync(ctx, admin, userId);
    });

    private async Task RevokeUserSessionsAsync(HttpContext ctx, RegisteredClient admin, string userId)
    {
        // The rule the token exchange applies (UserIds): every id that can have a session can be named here.
        if (UserIds.Problem(userId) is { } problem)
        {
            await ProblemResponses.WriteAsync(ctx, StatusCodes.Status400BadRequest, "Bad Request", "The user id is not valid. " + problem);
            return;
        }

        var revoked = await revoker.RevokeAllAsync(userId, SessionEndReason.AdminLogout, null, null, ctx.RequestAborted);
        metrics.AdminLogout(admin.ClientId);
        audit.Record(new AuditEvent(AuditEventKind.AdminLogout, AuditEvent.AdminActor(admin.ClientId), "success", userId, ClientId: admin.ClientId, Reason: SessionEndReason.AdminLogout.Code + ": " + revoked.ToString(System.Globalization.CultureInfo.InvariantCulture) + " session(s)"));
        await OAuthResponses.WriteJsonAsync(ctx, 200, writer =>
        {
            writer.WriteString("user_id", userId);
            writer.WriteNumber("revoked", revoked);
        });
    }
}
