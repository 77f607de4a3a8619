using Microsoft.AspNetCore.Http;
using TokenService.Clients;
using TokenService.Http;
using TokenService.Sessions;

namespace TokenService.Endpoints;

/// <summary>
/// A user's own sessions (ASVS V7): <c>GET /sessions</c>, <c>DELETE /sessions/{sid}</c>,
/// <c>POST /sessions/revoke-others</c> (after a password change), with a bearer access token of that user.
/// A single-page app calls them from its own origin, so they answer CORS for the origins registered for spa
/// clients (a preflight, since the bearer token travels in the Authorization header). CORS only lets such a page
/// read the answer: the bearer token, not the origin, is what authenticates the caller.
/// Each session in the list carries what a person tells sessions apart by, as the session lists of large identity
/// providers do: the application's display name (<c>Clients:N:DisplayName</c>, read now, so that a renamed
/// application shows its new name), the browser and system it was opened from (<see cref="SessionRecord.Device"/>),
/// when it was opened and last used, and its two deadlines: the idle one, which moves with every use, and the
/// absolute one, which never does.
/// </summary>
public sealed class SessionsEndpoint(BearerAuthentication bearer, SessionService sessions, TimeProvider time, CorsPolicy cors, IClientStore clients)
{
    public Task ListAsync(HttpContext context) => EndpointInvoker.InvokeAsync(context, oauthErrors: false, async ctx =>
    {
        if (HttpMethods.IsOptions(ctx.Request.Method))
        {
            await cors.PreflightAsync(ctx, "GET");
            return;
        }

        cors.Apply(ctx);
        if (!HttpMethods.IsGet(ctx.Request.Method))
        {
            await ProblemResponses.MethodNotAllowedAsync(ctx, "GET");
            return;
        }

        if (await bearer.AuthenticateAsync(ctx) is not { Session: { } current })
        {
            return;
        }

        var live = await sessions.ListLiveAsync(current.UserId, ctx.RequestAborted);
        await OAuthResponses.WriteJsonAsync(ctx, 200, writer =>
        {
            writer.WriteStartArray("sessions");
            foreach (var session in live)
            {
                writer.WriteStartObject();
                writer.WriteString("sid", session.SessionId);
                writer.WriteString("client_id", session.ClientId);
                writer.WriteString("client_name", clients.Find(session.ClientId)?.DisplayName ?? session.ClientId);
                if (session.Device is { } device)
                {
                    writer.WriteString("device", device);
                }
                else
                {
                    writer.WriteNull("device");
                }

                writer.WriteString("created_at", session.CreatedAt);
                writer.WriteString("last_activity_at", session.LastActivityAt);
                writer.WriteString("expires_at", session.IdleExpiresAt < session.AbsoluteExpiresAt ? session.IdleExpiresAt : session.AbsoluteExpiresAt);
                writer.WriteString("idle_expires_at", session.IdleExpiresAt);
                writer.WriteString("absolute_expires_at", session.AbsoluteExpiresAt);
                writer.WriteBoolean("current", session.SessionId == current.SessionId);
                writer.WriteEndObject();
            }

            writer.WriteEndArray();
        });
    });

    public Task DeleteAsync(HttpContext context, string sessionId) => EndpointInvoker.InvokeAsync(context, oauthErrors: false, async ctx =>
    {
        if (HttpMethods.IsOptions(ctx.Request.Method))
        {
            await cors.PreflightAsync(ctx, "DELETE");
            return;
        }

        cors.Apply(ctx);
        if (!HttpMethods.IsDelete(ctx.Request.Method))
        {
            await ProblemResponses.MethodNotAllowedAsync(ctx, "DELETE");
            return;
        }

        if (await bearer.AuthenticateAsync(ctx) is not { Session: { } current })
        {
            return;
        }

        // Another user's session and an unknown one look the same: 404.
        var target = await sessions.GetAsync(sessionId, ctx.RequestAborted);
        if (target is null || target.UserId != current.UserId || !target.IsLive(time.GetUtcNow()))
        {
            await ProblemResponses.NotFoundAsync(ctx, "No such session.");
            return;
        }

        await sessions.RevokeSessionAsync(sessionId, SessionEndReason.Logout, ctx.RequestAborted);
        ctx.Response.StatusCode = StatusCodes.Status204NoContent;
    });

    public Task RevokeOthersAsync(HttpContext context) => EndpointInvoker.InvokeAsync(context, oauthErrors: false, async ctx =>
    {
        if (HttpMethods.IsOptions(ctx.Request.Method))
        {
            await cors.PreflightAsync(ctx, "POST");
            return;
        }

        cors.Apply(ctx);
        if (!HttpMethods.IsPost(ctx.Request.Method))
        {
            await ProblemResponses.MethodNotAllowedAsync(ctx, "POST");
            return;
        }

        if (await bearer.AuthenticateAsync(ctx) is not { Session: { } current })
        {
            return;
        }

        var revoked = await sessions.RevokeAllAsync(current.UserId, SessionEndReason.OtherSessionsEndedByUser, current.SessionId, null, ctx.RequestAborted);
        await OAuthResponses.WriteJsonAsync(ctx, 200, writer => writer.WriteNumber("revoked", revoked));
    });
}
