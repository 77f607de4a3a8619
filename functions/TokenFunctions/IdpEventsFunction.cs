using Microsoft.Azure.Functions.Worker;
using TokenService.Events;

namespace TokenFunctions;

/// <summary>
/// IdP events from the Event Grid subscription (CloudEvents 1.0 or Event Grid schema): the same processor as the
/// standalone host's /events/idp webhook. A malformed or unverifiable event throws, so Event Grid dead-letters it
/// after its retries; a store outage throws DependencyUnavailableException and Event Grid retries.
/// </summary>
public sealed class IdpEventsFunction(IdpEventProcessor processor)
{
    [Function("IdpEvents")]
    public async Task Run([EventGridTrigger] string eventJson, CancellationToken cancellationToken) =>
        await processor.ProcessAsync(IdpEventEnvelopeReader.Read(System.Text.Encoding.UTF8.GetBytes(eventJson)), cancellationToken);
}
