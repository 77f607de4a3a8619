using Microsoft.AspNetCore.Http;
using TokenService.Clients;
using TokenService.Http;
using TokenService.Sessions;

namespace TokenService.Endpoints;

/// <summary>
/// <c>POST /management/users/{userId}/revoke</c>: force logout of every session of a user (admin client, HTTP Basic).
/// Not under <c>/admin</c>: the Azure Functions host refuses routes that start with <c>admin</c> or <c>runtime</c>.
/// </summary>
public sealed class ManagementEndpoint(ClientAuthenticator authenticator, IUserSessionRevoker revoker, RequestRateLimiter limiter)
{
    /// <summary>Route template of the force-logout route (both hosts).</summary>
    public const string RevokeUserRoute = "management/users/{userId}/revoke";

    /// <summary>
    /// Force logout. <paramref name="routeUserId"/> is the host's route value; the user id is read again from the raw
    /// request target where the host exposes it, because routing leaves <c>%2F</c> encoded (RFC 3986 §2.1: a
    /// percent-encoded octet in a segment is data, so an id may hold <c>/</c>, <c>%</c>, <c>+</c> or any character).
    /// </summary>
    public Task RevokeUserAsync(HttpContext context, string routeUserId) => EndpointInvoker.InvokeAsync(context, oauthErrors: false, async ctx =>
    {
        if (!HttpMethods.IsPost(ctx.Request.Method))
        {
            await ProblemResponses.MethodNotAllowedAsync(ctx, "POST");
            return;
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
            return;
        }

        if (!auth.Succeeded || !auth.UsedBasic || auth.Client!.Type != ClientType.Admin)
        {
            ctx.Response.Headers.WWWAuthenticate = "Basic realm=\"token-service-management\", charset=\"UTF-8\"";
            await ProblemResponses.WriteAsync(ctx, StatusCodes.Status401Unauthorized, "Unauthorized", "Admin client credentials (HTTP Basic) are required.");
            return;
        }

        var userId = RequestPath.Segment(ctx, 2) ?? routeUserId;
        if (string.IsNullOrWhiteSpace(userId) || userId.Length > 256 || userId.AsSpan().ContainsAnyInRange('\0', '\u001f'))
        {
            await ProblemResponses.WriteAsync(ctx, StatusCodes.Status400BadRequest, "Bad Request", "The user id is not valid.");
            return;
        }

        var revoked = await revoker.RevokeAllAsync(userId, "revoked_by_admin", null, null, ctx.RequestAborted);
        await OAuthResponses.WriteJsonAsync(ctx, 200, writer =>
        {
            writer.WriteString("user_id", userId);
            writer.WriteNumber("revoked", revoked);
        });
    });
}
