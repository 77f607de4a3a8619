using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Azure.Functions.Worker;
using TokenService.Endpoints;
using TokenService.Events;
using TokenService.Hosting;

namespace TokenFunctions;

/// <summary>
/// IdP events. Three entry points, one processor (the standalone host's too):
/// <list type="bullet">
/// <item><c>POST /events/idp</c>: Event Grid <c>WebHook</c> subscriptions and direct IdP webhooks. A delivery (one
/// event or a batch) is validated whole before anything is processed: a malformed batch is refused with 400 and
/// changes nothing.</item>
/// <item><c>POST /events/ssf</c>: OpenID Shared Signals push (RFC 8935).</item>
/// <item>The <c>IdpEvents</c> Event Grid trigger, for <c>AzureFunction</c> subscriptions: the host splits every
/// batch and calls it once per event, so each event is its own unit. A malformed or unverifiable event throws
/// before anything changes; Event Grid retries it and dead-letters it after its retries. A store outage throws
/// DependencyUnavailableException, and Event Grid retries it.</item>
/// </list>
/// </summary>
public sealed class EventFunctions(IdpEventsEndpoint webhook, IdpEventProcessor processor)
{
    [Function("IdpEventsWebhook")]
    public IActionResult Webhook([HttpTrigger(AuthorizationLevel.Anonymous, "post", "options", Route = "events/idp")] HttpRequest request) =>
        new EndpointActionResult(webhook.HandleAsync);

    [Function("SsfPush")]
    public IActionResult SsfPush([HttpTrigger(AuthorizationLevel.Anonymous, "post", Route = "events/ssf")] HttpRequest request) =>
        new EndpointActionResult(webhook.HandleSsfPushAsync);

    [Function("IdpEvents")]
    public Task IdpEvents([EventGridTrigger] string eventJson, CancellationToken cancellationToken) =>
        processor.ProcessAsync(IdpEventEnvelopeReader.Read(Encoding.UTF8.GetBytes(eventJson)), cancellationToken);
}

/// <summary>
/// The development IdP's routes (README walkthrough). They answer only where the core registered the development
/// IdP (Development, no <c>Idp</c> configured); elsewhere 404, as in the standalone host.
/// </summary>
public sealed class DevelopmentIdpFunctions
{
    [Function("DevIdpIdToken")]
    public IActionResult IdToken([HttpTrigger(AuthorizationLevel.Anonymous, "post", Route = "dev-idp/id-token")] HttpRequest request) =>
        new EndpointActionResult(DevelopmentIdpEndpoint.MintOrNotFoundAsync);

    [Function("DevIdpJwks")]
    public IActionResult Jwks([HttpTrigger(AuthorizationLevel.Anonymous, "get", "head", Route = "dev-idp/jwks.json")] HttpRequest request) =>
        new EndpointActionResult(DevelopmentIdpEndpoint.JwksOrNotFoundAsync);
}
