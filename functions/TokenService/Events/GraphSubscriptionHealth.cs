namespace TokenService.Events;

/// <summary>
/// A small health signal for the Microsoft Graph subscription behind the Event Grid partner topic: the time of the
/// last Graph lifecycle notification (<c>reauthorizationRequired</c>, <c>subscriptionRemoved</c>, <c>missed</c>;
/// Microsoft Graph docs, "Reduce missing subscriptions and change notifications"). Each of them asks an operator to
/// act (renew or recreate the subscription, or reconcile missed changes), so <c>/healthz</c> reports
/// <c>"graphSubscription": "attention"</c> for <see cref="AttentionFor"/> after one, without failing health: the token
/// service itself is fine, its deprovisioning feed may not be.
/// </summary>
public sealed class GraphSubscriptionHealth(TimeProvider time)
{
    /// <summary>How long after the last lifecycle notification the signal stays "attention".</summary>
    public static readonly TimeSpan AttentionFor = TimeSpan.FromHours(24);

    private readonly Lock _gate = new();
    private (DateTimeOffset At, string Kind)? _last;

    /// <summary>The last lifecycle notification received (its kind, e.g. "reauthorizationRequired"), if any.</summary>
    public (DateTimeOffset At, string Kind)? LastLifecycleNotification
    {
        get
        {
            lock (_gate)
            {
                return _last;
            }
        }
    }

    /// <summary>"attention" within <see cref="AttentionFor"/> of a lifecycle notification, else "ok".</summary>
    public string Status => LastLifecycleNotification is { } last && time.GetUtcNow() - last.At < AttentionFor ? "attention" : "ok";

    public void RecordLifecycleNotification(string kind)
    {
        lock (_gate)
        {
            _last = (time.GetUtcNow(), kind);
        }
    }
}
