using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using TokenService.Http;
using TokenService.Idp;
using TokenService.Protocol;

namespace TokenService.Endpoints;

/// <summary>
/// Development-only stand-in IdP (registered only in Development without a configured IdP; elsewhere its routes
/// answer 404 in both hosts):
/// <c>POST /dev-idp/id-token</c> with form <c>sub</c> (and optional <c>acr</c>, <c>amr</c>) returns an ID token
/// the token endpoint trusts; <c>GET /dev-idp/jwks.json</c> publishes its key. The mint route answers CORS for
/// the spa clients' origins so that a single-page app (samples/spa) can stand in for the IdP's sign-in in the
/// browser; it is a simple form POST, so no preflight is needed.
/// </summary>
public sealed class DevelopmentIdpEndpoint(DevelopmentIdp idp, CorsPolicy cors)
{
    /// <summary><c>POST /dev-idp/id-token</c> when the development IdP is registered, else 404.</summary>
    public static Task MintOrNotFoundAsync(HttpContext context) =>
        context.RequestServices.GetService<DevelopmentIdpEndpoint>() is { } endpoint ? endpoint.MintAsync(context) : NotFoundAsync(context);

    /// <summary><c>GET /dev-idp/jwks.json</c> when the development IdP is registered, else 404.</summary>
    public static Task JwksOrNotFoundAsync(HttpContext context) =>
        context.RequestServices.GetService<DevelopmentIdpEndpoint>() is { } endpoint ? endpoint.JwksAsync(context) : NotFoundAsync(context);

    private static Task NotFoundAsync(HttpContext context) =>
        ProblemResponses.NotFoundAsync(context, "No such route.");

    public Task MintAsync(HttpContext context) => EndpointInvoker.InvokeAsync(context, oauthErrors: true, async ctx =>
    {
        cors.Apply(ctx);
        if (!HttpMethods.IsPost(ctx.Request.Method))
        {
            await ProblemResponses.MethodNotAllowedAsync(ctx, "POST");
            return;
        }

        var parsed = await FormRequest.ReadAsync(ctx.Request, ctx.RequestAborted);
        if (parsed.Form is null)
        {
            await OAuthResponses.WriteErrorAsync(ctx, parsed.Status, OAuthErrors.InvalidRequest, parsed.Error!);
            return;
        }

        var subject = FormRequest.Get(parsed.Form, "sub");
        if (subject is null || subject.Length > 256)
        {
            await OAuthResponses.WriteErrorAsync(ctx, 400, OAuthErrors.InvalidRequest, "sub is required.");
            return;
        }

        var amr = FormRequest.Get(parsed.Form, "amr")?.Split(' ', StringSplitOptions.RemoveEmptyEntries) ?? [];
        var idToken = idp.MintIdToken(subject, FormRequest.Get(parsed.Form, "acr"), amr);
        await OAuthResponses.WriteJsonAsync(ctx, 200, writer =>
        {
            writer.WriteString("id_token", idToken);
            writer.WriteString("issuer", idp.Issuer);
            writer.WriteString("audience", DevelopmentIdp.Audience);
        });
    });

    public Task JwksAsync(HttpContext context) => EndpointInvoker.InvokeAsync(context, oauthErrors: false, ctx =>
        !HttpMethods.IsGet(ctx.Request.Method) && !HttpMethods.IsHead(ctx.Request.Method)
            ? ProblemResponses.MethodNotAllowedAsync(ctx, "GET, HEAD")
            : OAuthResponses.WriteJsonAsync(ctx, 200, writer =>
            {
                writer.WriteStartArray("keys");
                idp.Jwk.WriteTo(writer);
                writer.WriteEndArray();
            }));
}
