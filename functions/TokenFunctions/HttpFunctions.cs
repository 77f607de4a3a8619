using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Azure.Functions.Worker;
using TokenService.Endpoints;
using TokenService.Hosting;

namespace TokenFunctions;

/// <summary>
/// Every HTTP route of docs/api.md, "Routes at a glance" (host.json sets the route prefix to empty), with the names and methods of the
/// core's route table (TokenServiceRoutes.All; a test holds functions.metadata to it). Glue only: each function is
/// one call into the endpoint the standalone host maps too. Anonymous: clients authenticate to the endpoints
/// themselves (HTTP Basic, bearer tokens, the webhook secret), not with Functions keys.
/// </summary>
public sealed class HttpFunctions(
    DiscoveryEndpoint discovery,
    JwksEndpoint jwks,
    TokenEndpoint token,
    RevocationEndpoint revocation,
    IntrospectionEndpoint introspection,
    SessionsEndpoint sessions,
    ManagementEndpoint management,
    HealthEndpoint health,
    SharedSignalsEndpoint sharedSignals)
{
    [Function("Discovery")]
    public IActionResult Discovery([HttpTrigger(AuthorizationLevel.Anonymous, "get", "head", Route = ".well-known/openid-configuration")] HttpRequest request) =>
        new EndpointActionResult(discovery.HandleAsync);

    [Function("Jwks")]
    public IActionResult Jwks([HttpTrigger(AuthorizationLevel.Anonymous, "get", "head", Route = ".well-known/jwks.json")] HttpRequest request) =>
        new EndpointActionResult(jwks.HandleAsync);

    [Function("Token")]
    public IActionResult Token([HttpTrigger(AuthorizationLevel.Anonymous, "post", "options", Route = "oauth2/token")] HttpRequest request) =>
        new EndpointActionResult(token.HandleAsync);

    [Function("Revoke")]
    public IActionResult Revoke([HttpTrigger(AuthorizationLevel.Anonymous, "post", "options", Route = "oauth2/revoke")] HttpRequest request) =>
        new EndpointActionResult(revocation.HandleAsync);

    [Function("Introspect")]
    public IActionResult Introspect([HttpTrigger(AuthorizationLevel.Anonymous, "post", Route = "oauth2/introspect")] HttpRequest request) =>
        new EndpointActionResult(introspection.HandleAsync);

    [Function("ListSessions")]
    public IActionResult ListSessions([HttpTrigger(AuthorizationLevel.Anonymous, "get", "options", Route = "sessions")] HttpRequest request) =>
        new EndpointActionResult(sessions.ListAsync);

    [Function("RevokeOtherSessions")]
    public IActionResult RevokeOtherSessions([HttpTrigger(AuthorizationLevel.Anonymous, "post", "options", Route = "sessions/revoke-others")] HttpRequest request) =>
        new EndpointActionResult(sessions.RevokeOthersAsync);

    [Function("DeleteSession")]
    public IActionResult DeleteSession([HttpTrigger(AuthorizationLevel.Anonymous, "delete", "options", Route = "sessions/{sid}")] HttpRequest request, string sid) =>
        new EndpointActionResult(context =>
            // A real Functions host matches an OPTIONS /sessions/revoke-others to this route rather than to the literal
            // one (both serve OPTIONS); the preflight is revoke-others' own, so answer it there.
            HttpMethods.IsOptions(context.Request.Method) && sid == "revoke-others" ? sessions.RevokeOthersAsync(context) : sessions.DeleteAsync(context, sid));

    [Function("RevokeUserByForm")]
    public IActionResult RevokeUserByForm([HttpTrigger(AuthorizationLevel.Anonymous, "post", Route = ManagementEndpoint.RevokeUserByFormRoute)] HttpRequest request) =>
        new EndpointActionResult(management.RevokeUserByFormAsync);

    [Function("RevokeUser")]
    public IActionResult RevokeUser([HttpTrigger(AuthorizationLevel.Anonymous, "post", Route = ManagementEndpoint.RevokeUserRoute)] HttpRequest request, string userId) =>
        new EndpointActionResult(context => management.RevokeUserAsync(context, userId));

    [Function("RotateKeys")]
    public IActionResult RotateKeys([HttpTrigger(AuthorizationLevel.Anonymous, "post", Route = ManagementEndpoint.RotateKeysRoute)] HttpRequest request) =>
        new EndpointActionResult(management.RotateKeysAsync);

    [Function("RevokeKey")]
    public IActionResult RevokeKey([HttpTrigger(AuthorizationLevel.Anonymous, "post", Route = ManagementEndpoint.RevokeKeyRoute)] HttpRequest request, string kid) =>
        new EndpointActionResult(context => management.RevokeKeyAsync(context, kid));

    [Function("Health")]
    public IActionResult Health([HttpTrigger(AuthorizationLevel.Anonymous, "get", "head", Route = "healthz")] HttpRequest request) =>
        new EndpointActionResult(health.HandleAsync);

    [Function("SsfConfiguration")]
    public IActionResult SsfConfiguration([HttpTrigger(AuthorizationLevel.Anonymous, "get", "head", Route = ".well-known/ssf-configuration")] HttpRequest request) =>
        new EndpointActionResult(sharedSignals.ConfigurationAsync);

    [Function("SsfStreams")]
    public IActionResult SsfStreams([HttpTrigger(AuthorizationLevel.Anonymous, "get", "post", "patch", "put", "delete", Route = SharedSignalsEndpoint.ConfigurationRoute)] HttpRequest request) =>
        new EndpointActionResult(sharedSignals.StreamsAsync);

    [Function("SsfStreamStatus")]
    public IActionResult SsfStreamStatus([HttpTrigger(AuthorizationLevel.Anonymous, "get", "post", Route = SharedSignalsEndpoint.StatusRoute)] HttpRequest request) =>
        new EndpointActionResult(sharedSignals.StatusAsync);

    [Function("SsfVerify")]
    public IActionResult SsfVerify([HttpTrigger(AuthorizationLevel.Anonymous, "post", Route = SharedSignalsEndpoint.VerificationRoute)] HttpRequest request) =>
        new EndpointActionResult(sharedSignals.VerifyAsync);

    [Function("SsfPoll")]
    public IActionResult SsfPoll([HttpTrigger(AuthorizationLevel.Anonymous, "post", Route = SharedSignalsEndpoint.PollRoutePrefix + "{streamId}")] HttpRequest request, string streamId) =>
        new EndpointActionResult(context => sharedSignals.PollAsync(context, streamId));
}
