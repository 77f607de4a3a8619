using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using TokenService.Endpoints;
using TokenService.Http;

namespace TokenService.Hosting;

/// <summary>
/// The route table of CONTRACT §2 for the standalone host. The Functions app declares the same routes
/// as HTTP triggers calling the same endpoint methods. Each route takes every method so that a wrong one
/// gets a 405 with a JSON body from the endpoint itself.
/// </summary>
public static class TokenServiceRoutes
{
    public static IEndpointRouteBuilder MapTokenService(this IEndpointRouteBuilder app)
    {
        app.Map("/.well-known/openid-configuration", ctx => Get<DiscoveryEndpoint>(ctx).HandleAsync(ctx));
        app.Map("/.well-known/jwks.json", ctx => Get<JwksEndpoint>(ctx).HandleAsync(ctx));
        app.Map("/oauth2/token", ctx => Get<TokenEndpoint>(ctx).HandleAsync(ctx));
        app.Map("/oauth2/revoke", ctx => Get<RevocationEndpoint>(ctx).HandleAsync(ctx));
        app.Map("/oauth2/introspect", ctx => Get<IntrospectionEndpoint>(ctx).HandleAsync(ctx));
        app.Map("/sessions", ctx => Get<SessionsEndpoint>(ctx).ListAsync(ctx));
        app.Map("/sessions/revoke-others", ctx => Get<SessionsEndpoint>(ctx).RevokeOthersAsync(ctx));
        app.Map("/sessions/{sid}", ctx => Get<SessionsEndpoint>(ctx).DeleteAsync(ctx, RouteValue(ctx, "sid")));
        app.Map("/admin/users/{userId}/revoke", ctx => Get<AdminEndpoint>(ctx).RevokeUserAsync(ctx, RouteValue(ctx, "userId")));
        app.Map("/healthz", ctx => Get<HealthEndpoint>(ctx).HandleAsync(ctx));
        app.Map("/events/idp", ctx => Get<IdpEventsEndpoint>(ctx).HandleAsync(ctx));
        app.Map("/events/ssf", ctx => Get<IdpEventsEndpoint>(ctx).HandleSsfPushAsync(ctx));

        if (app.ServiceProvider.GetService<DevelopmentIdpEndpoint>() is not null)
        {
            app.MapPost("/dev-idp/id-token", ctx => Get<DevelopmentIdpEndpoint>(ctx).MintAsync(ctx));
            app.MapGet("/dev-idp/jwks.json", ctx => Get<DevelopmentIdpEndpoint>(ctx).JwksAsync(ctx));
        }

        return app;
    }

    /// <summary>Unknown routes answer problem details, not an empty 404.</summary>
    public static void MapTokenServiceFallback(this IEndpointRouteBuilder app) =>
        app.MapFallback(ctx => ProblemResponses.NotFoundAsync(ctx, "No such route."));

    private static T Get<T>(HttpContext context) where T : notnull => context.RequestServices.GetRequiredService<T>();

    private static string RouteValue(HttpContext context, string name) => context.GetRouteValue(name) as string ?? string.Empty;
}
