using System.Diagnostics.Metrics;
using Microsoft.Extensions.Options;
using TokenService.Configuration;
using TokenService.Diagnostics;

namespace TokenService.Events;

/// <summary>
/// The health signal of the Microsoft Graph subscription behind the Event Grid partner topic, reported by
/// <c>/healthz</c> as <c>graphSubscription</c> without ever failing health (tokens still work; the deprovisioning feed
/// may not). When the app manages the subscription (<see cref="GraphSubscriptionOptions.Enabled"/>) it remembers the
/// expiry <see cref="GraphSubscriptionManager"/> last saw: <c>"missing"</c> when there is none or it has passed,
/// <c>"expiring"</c> when under <see cref="ExpiringWithin"/> remains, <c>"unknown"</c> before this process has checked.
/// Otherwise, and when the subscription is fine, the last Graph lifecycle notification (Graph docs, "Reduce missing
/// subscriptions and change notifications") gives <c>"attention"</c> for <see cref="AttentionFor"/>: any of them when
/// the subscription is managed by hand, only <c>missed</c> (changes to reconcile) when the app handles the others
/// itself. The expiry is also the gauge <c>tokenservice.idp.graph_subscription.expires_in</c> (seconds).
/// </summary>
public sealed class GraphSubscriptionHealth : IDisposable
{
    /// <summary>How long after the last lifecycle notification the signal stays "attention".</summary>
    public static readonly TimeSpan AttentionFor = TimeSpan.FromHours(24);

    /// <summary>Under this much remaining the subscription is "expiring": renewal (7 days ahead) has failed for days.</summary>
    public static readonly TimeSpan ExpiringWithin = TimeSpan.FromDays(3);

    private readonly TimeProvider _time;
    private readonly bool _managed;
    private readonly Meter? _meter;
    private readonly Lock _gate = new();
    private (DateTimeOffset At, string Kind)? _last;
    private (bool Checked, string? Id, DateTimeOffset? ExpiresAt) _subscription;
    private long _missed;

    public GraphSubscriptionHealth(TimeProvider time, IOptions<EventsOptions>? options = null, IMeterFactory? meters = null)
    {
        _time = time;
        _managed = options?.Value.GraphSubscription.Enabled == true;

        // An observable instrument holds a callback on this instance: on this service provider's meter (disposed with
        // it), not the static one, as InstrumentedSigningKeyService does.
        if (_managed)
        {
            _meter = meters?.Create(TokenServiceDiagnostics.Name, TokenServiceDiagnostics.Version);
            _meter?.CreateObservableGauge("tokenservice.idp.graph_subscription.expires_in", ObserveExpiresIn, "s",
                "Seconds until the Microsoft Graph subscription on users expires (negative once lapsed); absent before the first check.");
        }
    }

    /// <summary>Whether the app manages the subscription (Events:GraphSubscription:NotificationUrl is set).</summary>
    public bool Managed => _managed;

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

    /// <summary>The subscription's expiry as last seen by this process; null when none was found or none checked yet.</summary>
    public DateTimeOffset? SubscriptionExpiresAt
    {
        get
        {
            lock (_gate)
            {
                return _subscription.ExpiresAt;
            }
        }
    }

    /// <summary>How many <c>missed</c> lifecycle notifications this process received.</summary>
    public long MissedNotifications => Interlocked.Read(ref _missed);

    public string Status
    {
        get
        {
            var now = _time.GetUtcNow();
            (DateTimeOffset At, string Kind)? last;
            (bool Checked, string? Id, DateTimeOffset? ExpiresAt) subscription;
            lock (_gate)
            {
                last = _last;
                subscription = _subscription;
            }

            if (_managed)
            {
                if (!subscription.Checked)
                {
                    return "unknown";
                }

                if (subscription.ExpiresAt is not { } expiresAt || expiresAt <= now)
                {
                    return "missing";
                }

                if (expiresAt - now < ExpiringWithin)
                {
                    return "expiring";
                }
            }

            var recent = last is { } l && now - l.At < AttentionFor;
            return recent && (!_managed || last!.Value.Kind == "missed") ? "attention" : "ok";
        }
    }

    public void RecordLifecycleNotification(string kind)
    {
        lock (_gate)
        {
            _last = (_time.GetUtcNow(), kind);
        }

        if (kind == "missed")
        {
            Interlocked.Increment(ref _missed);
        }
    }

    /// <summary>What a check found: the subscription kept (or null: none, and none could be created).</summary>
    public void RecordSubscription(string? id, DateTimeOffset? expiresAt)
    {
        lock (_gate)
        {
            _subscription = (true, id, expiresAt);
        }
    }

    public void Dispose() => _meter?.Dispose();

    private IEnumerable<Measurement<double>> ObserveExpiresIn()
    {
        var expiresAt = SubscriptionExpiresAt;
        return expiresAt is { } at ? [new Measurement<double>((at - _time.GetUtcNow()).TotalSeconds)] : [];
    }
}
