using Microsoft.AspNetCore.Http;
using TokenService.Clients;
using TokenService.Http;
using TokenService.Sessions;

namespace TokenService.Endpoints;

/// <summary><c>POST /admin/users/{userId}/revoke</c>: force logout of every session of a user (admin client, HTTP Basic).</summary>
public sealed class AdminEndpoint(ClientAuthenticator authenticator, IUserSessionRevoker revoker)
{
    public Task RevokeUserAsync(HttpContext context, string userId) => EndpointInvoker.InvokeAsync(context, oauthErrors: false, async ctx =>
    {
        if (!HttpMethods.IsPost(ctx.Request.Method))
        {
            await ProblemResponses.MethodNotAllowedAsync(ctx, "POST");
            return;
        }

        var auth = authenticator.Authenticate(ctx.Request, new Dictionary<string, Microsoft.Extensions.Primitives.StringValues>());
        if (!auth.Succeeded || !auth.UsedBasic || auth.Client!.Type != ClientType.Admin)
        {
            ctx.Response.Headers.WWWAuthenticate = "Basic realm=\"token-service-admin\", charset=\"UTF-8\"";
            await ProblemResponses.WriteAsync(ctx, StatusCodes.Status401Unauthorized, "Unauthorized", "Admin client credentials (HTTP Basic) are required.");
            return;
        }

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
