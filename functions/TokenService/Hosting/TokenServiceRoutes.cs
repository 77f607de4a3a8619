using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using TokenService.Endpoints;
using TokenService.Http;

namespace TokenService.Hosting;

/// <summary>One route of docs/api.md, "Routes at a glance": its template (no leading slash, as Functions triggers take it) and methods.</summary>
public sealed record TokenServiceRoute(string Name, string Template, IReadOnlyList<string> Methods, Func<HttpContext, Task> Handle);

/// <summary>
/// The route table of docs/api.md, "Routes at a glance", the one list both hosts serve: the standalone host maps it here; the Functions
/// app declares the same routes as HTTP triggers calling the same endpoint methods, and a test holds its
/// functions.metadata to this table. No template may start with <c>admin</c> or <c>runtime</c> (the Functions host
/// reserves them). The standalone host maps each route for every method so that a wrong one gets a 405 with a
/// JSON body from the endpoint itself.
/// </summary>
public static class TokenServiceRoutes
{
    public static IReadOnlyList<TokenServiceRoute> All { get; } =
    [
        new("Discovery", ".well-known/openid-configuration", ["GET", "HEAD"], ctx => Get<DiscoveryEndpoint>(ctx).HandleAsync(ctx)),
        new("Jwks", ".well-known/jwks.json", ["GET", "HEAD"], ctx => Get<JwksEndpoint>(ctx).HandleAsync(ctx)),
        new("Token", "oauth2/token", ["POST", "OPTIONS"], ctx => Get<TokenEndpoint>(ctx).HandleAsync(ctx)),
        new("Revoke", "oauth2/revoke", ["POST", "OPTIONS"], ctx => Get<RevocationEndpoint>(ctx).HandleAsync(ctx)),
        new("Introspect", "oauth2/introspect", ["POST"], ctx => Get<IntrospectionEndpoint>(ctx).HandleAsync(ctx)),
        new("ListSessions", "sessions", ["GET", "OPTIONS"], ctx => Get<SessionsEndpoint>(ctx).ListAsync(ctx)),
        new("RevokeOtherSessions", "sessions/revoke-others", ["POST", "OPTIONS"], ctx => Get<SessionsEndpoint>(ctx).RevokeOthersAsync(ctx)),
        new("DeleteSession", "sessions/{sid}", ["DELETE", "OPTIONS"], ctx => Get<SessionsEndpoint>(ctx).DeleteAsync(ctx, RouteValue(ctx, "sid"))),
        new("RevokeUserByForm", ManagementEndpoint.RevokeUserByFormRoute, ["POST"], ctx => Get<ManagementEndpoint>(ctx).RevokeUserByFormAsync(ctx)),
        new("RevokeUser", ManagementEndpoint.RevokeUserRoute, ["POST"], ctx => Get<ManagementEndpoint>(ctx).RevokeUserAsync(ctx, RouteValue(ctx, "userId"))),
        new("RotateKeys", ManagementEndpoint.RotateKeysRoute, ["POST"], ctx => Get<ManagementEndpoint>(ctx).RotateKeysAsync(ctx)),
        new("RevokeKey", ManagementEndpoint.RevokeKeyRoute, ["POST"], ctx => Get<ManagementEndpoint>(ctx).RevokeKeyAsync(ctx, RouteValue(ctx, "kid"))),
        new("Health", "healthz", ["GET", "HEAD"], ctx => Get<HealthEndpoint>(ctx).HandleAsync(ctx)),
        new("IdpEventsWebhook", "events/idp", ["POST", "OPTIONS"], ctx => Get<IdpEventsEndpoint>(ctx).HandleAsync(ctx)),
        new("SsfPush", "events/ssf", ["POST"], ctx => Get<IdpEventsEndpoint>(ctx).HandleSsfPushAsync(ctx)),
        new("SsfConfiguration", ".well-known/ssf-configuration", ["GET", "HEAD"], ctx => Get<SharedSignalsEndpoint>(ctx).ConfigurationAsync(ctx)),
        new("SsfStreams", SharedSignalsEndpoint.ConfigurationRoute, ["GET", "POST", "PATCH", "PUT", "DELETE"], ctx => Get<SharedSignalsEndpoint>(ctx).StreamsAsync(ctx)),
        new("SsfStreamStatus", SharedSignalsEndpoint.StatusRoute, ["GET", "POST"], ctx => Get<SharedSignalsEndpoint>(ctx).StatusAsync(ctx)),
        new("SsfVerify", SharedSignalsEndpoint.VerificationRoute, ["POST"], ctx => Get<SharedSignalsEndpoint>(ctx).VerifyAsync(ctx)),
        new("SsfPoll", SharedSignalsEndpoint.PollRoutePrefix + "{streamId}", ["POST"], ctx => Get<SharedSignalsEndpoint>(ctx).PollAsync(ctx, RouteValue(ctx, "streamId"))),
        new("DevIdpIdToken", "dev-idp/id-token", ["POST"], ctx => DevelopmentIdpEndpoint.MintOrNotFoundAsync(ctx)),
        new("DevIdpJwks", "dev-idp/jwks.json", ["GET", "HEAD"], ctx => DevelopmentIdpEndpoint.JwksOrNotFoundAsync(ctx)),
    ];

    public static IEndpointRouteBuilder MapTokenService(this IEndpointRouteBuilder app)
    {
        foreach (var route in All)
        {
            app.Map("/" + route.Template, route.Handle).WithName(route.Name);
        }

        return app;
    }

    /// <summary>Unknown routes answer problem details, not an empty 404.</summary>
    public static void MapTokenServiceFallback(this IEndpointRouteBuilder app)
    {
        // MapFallback's default pattern skips paths that look like files ("/foo.json"); match every path instead.
        app.MapFallback("{**path}", ctx => ProblemResponses.NotFoundAsync(ctx, "No such route."));
    }

    private static T Get<T>(HttpContext context) where T : notnull => context.RequestServices.GetRequiredService<T>();

    private static string RouteValue(HttpContext context, string name) => context.GetRouteValue(name) as string ?? string.Empty;
}
