using Microsoft.AspNetCore.Http;
using TokenService.Clients;
using TokenService.Diagnostics;
using TokenService.Http;
using TokenService.Protocol;
using TokenService.Tokens;

namespace TokenService.Endpoints;

/// <summary>
/// <c>POST /oauth2/introspect</c> (RFC 7662) for resource_server clients. <c>active:false</c> for
/// expired, revoked, denied, forged or unknown tokens, tokens of an ended session, and tokens not meant
/// for the calling resource server's audiences.
/// </summary>
public sealed class IntrospectionEndpoint(ClientRequestReader reader, AccessTokenVerifier accessTokens, TokenServiceMetrics metrics)
{
    public Task HandleAsync(HttpContext context) => EndpointInvoker.InvokeAsync(context, oauthErrors: true, HandleCoreAsync);

    private async Task HandleCoreAsync(HttpContext context)
    {
        if (await reader.ReadAsync(context, "introspection", RateLimitedRoute.Introspection, browserFacing: false) is not { } request)
        {
            return;
        }

        await TokenServiceDiagnostics.TraceAsync(TokenServiceDiagnostics.Spans.Introspect, context, request.Client.ClientId, (context, request, accessTokens, metrics), static s => IntrospectAsync(s.context, s.request, s.accessTokens, s.metrics));
    }

    private static async Task IntrospectAsync(HttpContext context, ClientRequestReader.ClientRequest request, AccessTokenVerifier accessTokens, TokenServiceMetrics metrics)
    {
        if (request.Client.Type != ClientType.ResourceServer)
        {
            await OAuthResponses.WriteErrorAsync(context, 401, OAuthErrors.InvalidClient, "Only resource servers may introspect tokens.", "Basic realm=\"token-service\", charset=\"UTF-8\"");
            return;
        }

        var token = FormRequest.Get(request.Form, "token");
        if (token is null)
        {
            await OAuthResponses.WriteErrorAsync(context, 400, OAuthErrors.InvalidRequest, "token is required.");
            return;
        }

        var status = await accessTokens.ValidateActiveAsync(token, context.RequestAborted);
        var payload = status.Payload;
        var audiences = request.Client.AllowedAudiences;
        // Only tokens for this resource server's own audiences; none configured means none (start-up refuses that).
        var forThisResource = payload is not null && payload.Audiences.Any(audiences.Contains);
        metrics.Introspected(request.Client.ClientId, status.Active && forThisResource);
        if (!status.Active || !forThisResource)
        {
            await OAuthResponses.WriteJsonAsync(context, 200, writer => writer.WriteBoolean("active", false));
            return;
        }

        await OAuthResponses.WriteJsonAsync(context, 200, writer =>
        {
            writer.WriteBoolean("active", true);
            writer.WriteString("scope", payload!.Scope ?? string.Empty);
            writer.WriteString("client_id", payload.ClientId);
            writer.WriteString("sub", payload.Subject);
            // RFC 9449 §6.2: a DPoP-bound token's key thumbprint, for the resource server to check the proof against.
            var jkt = status.ConfirmationJkt;
            writer.WriteString("token_type", jkt is null ? "Bearer" : "DPoP");
            if (jkt is not null)
            {
                writer.WriteStartObject("cnf");
                writer.WriteString("jkt", jkt);
                writer.WriteEndObject();
            }

            writer.WriteNumber("exp", payload.ExpiresAt!.Value);
            if (payload.IssuedAt is { } iat)
            {
                writer.WriteNumber("iat", iat);
            }

            if (payload.NotBefore is { } nbf)
            {
                writer.WriteNumber("nbf", nbf);
            }

            writer.WriteString("iss", payload.Issuer);
            writer.WriteStringOrArray("aud", payload.Audiences);

            writer.WriteString("jti", payload.JwtId);
            writer.WriteString("sid", payload.SessionId);
            if (payload.AuthTime is { } authTime)
            {
                writer.WriteNumber("auth_time", authTime);
            }

            if (payload.Acr is not null)
            {
                writer.WriteString("acr", payload.Acr);
            }
        });
    }
}
