using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;
using TokenService.Configuration;
using TokenService.Http;
using TokenService.Protocol;

namespace TokenService.Endpoints;

/// <summary><c>GET /.well-known/openid-configuration</c>: RFC 8414 authorization server metadata.</summary>
public sealed class DiscoveryEndpoint(IOptions<TokenServiceOptions> options, IOptions<KeysOptions> keys)
{
    public Task HandleAsync(HttpContext context) => EndpointInvoker.InvokeAsync(context, oauthErrors: false, HandleCoreAsync);

    private Task HandleCoreAsync(HttpContext context)
    {
        if (!HttpMethods.IsGet(context.Request.Method) && !HttpMethods.IsHead(context.Request.Method))
        {
            return ProblemResponses.MethodNotAllowedAsync(context, "GET, HEAD");
        }

        var issuer = options.Value.IssuerOrThrow;
        var baseUrl = issuer.TrimEnd('/');
        return OAuthResponses.WriteJsonAsync(context, 200, writer =>
        {
            writer.WriteString("issuer", issuer);
            writer.WriteString("jwks_uri", baseUrl + "/.well-known/jwks.json");
            writer.WriteString("token_endpoint", baseUrl + "/oauth2/token");
            writer.WriteString("revocation_endpoint", baseUrl + "/oauth2/revoke");
            writer.WriteString("introspection_endpoint", baseUrl + "/oauth2/introspect");
            writer.WriteStringArray("grant_types_supported", [GrantTypes.TokenExchange, GrantTypes.RefreshToken]);
            // No authorization endpoint: tokens come only from the token endpoint's grants.
            writer.WriteStringArray("response_types_supported", []);
            writer.WriteStringArray("token_endpoint_auth_methods_supported", ["client_secret_basic", "client_secret_post", "none"]);
            writer.WriteStringArray("revocation_endpoint_auth_methods_supported", ["client_secret_basic", "client_secret_post", "none"]);
            writer.WriteStringArray("introspection_endpoint_auth_methods_supported", ["client_secret_basic", "client_secret_post"]);
            writer.WriteStringArray("subject_token_types_supported", [TokenTypes.IdToken]);
            writer.WriteStringArray("access_token_signing_alg_values_supported", [keys.Value.Algorithm]);
            writer.WriteStringArray("id_token_signing_alg_values_supported", [keys.Value.Algorithm]);
            writer.WriteStringArray("subject_types_supported", ["public"]);
            writer.WriteStringArray("dpop_signing_alg_values_supported", Dpop.DpopProofValidator.SupportedAlgorithms); // RFC 9449 §5.1
        }, cacheControl: "public, max-age=3600"); // Metadata is public and changes only with configuration.
    }
}
