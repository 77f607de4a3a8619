using Microsoft.Extensions.Logging;
using TokenService.Diagnostics;
using TokenService.Jwt;

namespace TokenService.Events;

/// <summary>
/// Acts on the Microsoft Graph lifecycle notifications (docs/idp-events.md, "Operations") that
/// <see cref="GraphIdpEventTranslator"/> flagged, once the whole delivery has been read: a warning, the subscription's
/// health for /healthz, and, when the app manages the subscription, its reauthorization or recreation. A failure throws,
/// so Event Grid redelivers (acting again is harmless). "missed" is for an operator: the changes it stands for are lost.
/// </summary>
/// <param name="logger">The processor's logger, so that the category of event 5004 stays what log filters expect.</param>
/// <param name="metrics">The host's metrics (the count of "missed" notifications).</param>
/// <param name="health">The subscription's health for /healthz; null where the app does not track it.</param>
/// <param name="subscriptions">Reauthorizes or recreates the subscription; null where the app does not manage it.</param>
public sealed partial class GraphLifecycleNotifications(ILogger logger, TokenServiceMetrics metrics, GraphSubscriptionHealth? health = null, GraphSubscriptionManager? subscriptions = null)
{
    public async Task HandleAsync(IdpEventDecision decision, string lifecycle, CancellationToken cancellationToken)
    {
        var subscriptionId = JsonText.GetStringOrNull(decision.Event.Data, "subscriptionId");
        health?.RecordLifecycleNotification(lifecycle);
        LogGraphLifecycle(logger, lifecycle, LogValue.Of(decision.Event.Id), LogValue.Of(subscriptionId));
        if (lifecycle == "missed")
        {
            metrics.GraphSubscriptionMissed();
        }

        if (subscriptions is not null)
        {
            await subscriptions.HandleLifecycleAsync(lifecycle, subscriptionId, cancellationToken);
        }
    }

    [LoggerMessage(EventId = 5004, Level = LogLevel.Warning, Message = "Microsoft Graph lifecycle notification {LifecycleEvent} (event {Id}, subscription {SubscriptionId}): the Graph subscription needs attention (renew, recreate or reconcile; docs/idp-events.md).")]
    private static partial void LogGraphLifecycle(ILogger logger, string lifecycleEvent, string id, string subscriptionId);
}
