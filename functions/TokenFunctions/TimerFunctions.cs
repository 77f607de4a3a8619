using Microsoft.Azure.Functions.Worker;
using TokenService.Events;
using TokenService.Keys;
using TokenService.Sessions;
using TokenService.SharedSignals;

namespace TokenFunctions;

/// <summary>
/// The timers of the standalone host's hosted services. Schedules are NCRONTAB with seconds, literal so that a
/// missing app setting cannot stop the host from indexing them. The 90 days are policy (Keys:RotationInterval),
/// not cron: the check runs daily (docs/api.md, "Keys and the JWKS") and decides; it is idempotent, so overlapping runs are safe.
/// </summary>
public sealed class TimerFunctions(ISigningKeyService keys, ExpiredStateCleanup cleanup, GraphSubscriptionManager graphSubscription, SsfPushDeliveryService ssfPush)
{
    [Function("KeyRotationCheck")]
    public async Task KeyRotationCheck([TimerTrigger("0 0 3 * * *")] TimerInfo timer, CancellationToken cancellationToken) =>
        await keys.RunRotationCheckAsync(cancellationToken); // no output binding: the result is logged by the service

    [Function("ExpiredStateCleanup")]
    public async Task Cleanup([TimerTrigger("0 17 * * * *")] TimerInfo timer, CancellationToken cancellationToken) =>
        await cleanup.RunOnceAsync(cancellationToken);

    // Daily, and at start (RunOnStartup): the check is idempotent (list first; a duplicate from instances starting
    // together is deleted) and costs one Graph list call, and each instance learns the subscription's expiry for its
    // /healthz and gauge. Nothing happens unless Events:GraphSubscription:NotificationUrl is set.
    [Function("GraphSubscriptionRenewal")]
    public async Task GraphSubscriptionRenewal([TimerTrigger("0 41 4 * * *", RunOnStartup = true)] TimerInfo timer, CancellationToken cancellationToken) =>
        await graphSubscription.EnsureAsync(cancellationToken);

    // Every minute: drains the Shared Signals outbox of push streams (RFC 8935) from the table: retries after a back-off
    // and events held across a restart, even while no request keeps an instance running. Latency does not depend on it:
    // each running instance pushes what it queues at once and sweeps the store every SharedSignals:PushSweepInterval.
    // Safe on several instances: a lease per stream lets one deliver it at a time, in order. Does nothing (one options
    // read) unless SharedSignals:Enabled; AzureWebJobs.SharedSignalsPushDelivery.Disabled=true stops it altogether.
    [Function("SharedSignalsPushDelivery")]
    public async Task SharedSignalsPushDelivery([TimerTrigger("0 * * * * *")] TimerInfo timer, CancellationToken cancellationToken) =>
        await ssfPush.DeliverDueAsync(cancellationToken);
}
