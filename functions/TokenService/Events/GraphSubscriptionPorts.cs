namespace TokenService.Events;

/// <summary>A Microsoft Graph subscription as Graph lists it (v1.0 subscription resource).</summary>
public sealed record GraphSubscription(string Id, string Resource, string? ChangeType, string? NotificationUrl, DateTimeOffset ExpirationDateTime);

/// <summary>What <c>POST /v1.0/subscriptions</c> is given.</summary>
public sealed record GraphSubscriptionRequest(
    string ChangeType, string NotificationUrl, string? LifecycleNotificationUrl, string Resource, DateTimeOffset ExpirationDateTime, string? ClientState);

/// <summary>
/// The app's own Microsoft Graph subscriptions, managed as the app's identity (the creator owns a subscription; with
/// application permissions <c>GET /subscriptions</c> lists the app's own). A lapsed or deleted subscription is an
/// answer (null / false), never an exception: Graph answers 404 for it, and the caller recreates. Throttling, outages,
/// refused permissions and unreadable answers throw <see cref="DependencyUnavailableException"/>.
/// </summary>
public interface IGraphSubscriptionClient
{
    /// <summary><c>GET /v1.0/subscriptions</c>: the live subscriptions the app created.</summary>
    Task<IReadOnlyList<GraphSubscription>> ListAsync(CancellationToken cancellationToken);

    /// <summary><c>POST /v1.0/subscriptions</c>.</summary>
    Task<GraphSubscription> CreateAsync(GraphSubscriptionRequest request, CancellationToken cancellationToken);

    /// <summary><c>PATCH /v1.0/subscriptions/{id}</c> with a new expiration; null when Graph answers 404.</summary>
    Task<GraphSubscription?> RenewAsync(string id, DateTimeOffset expirationDateTime, CancellationToken cancellationToken);

    /// <summary><c>POST /v1.0/subscriptions/{id}/reauthorize</c>; false when Graph answers 404.</summary>
    Task<bool> ReauthorizeAsync(string id, CancellationToken cancellationToken);

    /// <summary><c>DELETE /v1.0/subscriptions/{id}</c>; false when Graph answers 404 (already gone).</summary>
    Task<bool> DeleteAsync(string id, CancellationToken cancellationToken);
}
