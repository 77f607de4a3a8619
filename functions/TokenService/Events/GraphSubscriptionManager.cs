using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TokenService.Configuration;

namespace TokenService.Events;

/// <summary>What one check of the Microsoft Graph subscription did.</summary>
public enum GraphSubscriptionAction
{
    /// <summary>Events:GraphSubscription:NotificationUrl is not set: the app manages no subscription.</summary>
    Disabled,

    /// <summary>The subscription exists and has more than RenewBefore left.</summary>
    Current,

    Created,
    Renewed,

    /// <summary>Renewal answered 404 (lapsed or removed between the list and the renewal): a new one was created.</summary>
    Recreated,
}

/// <summary>Outcome of <see cref="GraphSubscriptionManager.EnsureAsync"/>.</summary>
public sealed record GraphSubscriptionCheck(GraphSubscriptionAction Action, string? SubscriptionId, DateTimeOffset? ExpiresAt, int DuplicatesDeleted = 0);

/// <summary>
/// Keeps the app's Microsoft Graph change-notification subscription on <c>users</c> alive, as the app's own identity
/// (which then owns it; Graph requires User.Read.All, application, to create and renew it). A <c>users</c> subscription
/// lives at most 41,760 minutes and then stops silently (Graph docs, "subscription resource type"), so
/// <see cref="EnsureAsync"/>, run daily by both hosts and at start, lists the app's subscriptions, creates ours
/// (resource <c>users</c>, our notification URL) when missing, and renews it to the maximum less a margin once less
/// than <see cref="GraphSubscriptionOptions.RenewBefore"/> remains; a renewal answered 404 (lapsed, or removed) creates
/// a new one. Lifecycle notifications (<see cref="HandleLifecycleAsync"/>): <c>reauthorizationRequired</c> →
/// reauthorize, then renew; <c>subscriptionRemoved</c> → recreate; <c>missed</c> → logged and counted (the changes are
/// lost; an operator reconciles). Several instances may check at once: Graph has no create-if-absent, so after a
/// creation the list is read again and, of our subscriptions, the one expiring last is kept (ties: the smallest id,
/// so every instance keeps the same one) and the others are deleted; a list showing two is converged the same way.
/// </summary>
public sealed partial class GraphSubscriptionManager(
    IOptions<EventsOptions> options,
    GraphSubscriptionHealth health,
    TimeProvider time,
    ILogger<GraphSubscriptionManager> logger,
    IGraphSubscriptionClient? graph = null)
{
    // Registered by the Azure adapters when Events:GraphEndpoint is set, which start-up validation requires whenever
    // Events:GraphSubscription:NotificationUrl is.
    private IGraphSubscriptionClient Client => graph ?? throw new InvalidOperationException(
        "Events:GraphSubscription:NotificationUrl is set but no Microsoft Graph client is registered (Events:GraphEndpoint).");

    // One check at a time in this process: the daily timer and a lifecycle notification may arrive together.
    private readonly SemaphoreSlim _checking = new(1, 1);

    public bool Enabled => options.Value.GraphSubscription.Enabled;

    /// <summary>Creates the subscription when missing and renews it when due; idempotent.</summary>
    public Task<GraphSubscriptionCheck> EnsureAsync(CancellationToken cancellationToken) => CheckAsync(renewNow: false, cancellationToken);

    /// <summary>Acts on a Graph lifecycle notification ("reauthorizationRequired", "subscriptionRemoved", "missed").</summary>
    public async Task HandleLifecycleAsync(string lifecycleEvent, string? subscriptionId, CancellationToken cancellationToken)
    {
        if (!Enabled)
        {
            return;
        }

        switch (lifecycleEvent)
        {
            case "reauthorizationRequired":
                // Graph docs, "Reduce missing subscriptions and change notifications": reauthorize the subscription
                // (or renew it) promptly, or Graph removes it. A 404 means it is gone already: the check recreates it.
                if (subscriptionId is { Length: > 0 } && await Client.ReauthorizeAsync(subscriptionId, cancellationToken))
                {
                    LogReauthorized(logger, LogValue.Of(subscriptionId));
                }

                await CheckAsync(renewNow: true, cancellationToken);
                break;
            case "subscriptionRemoved":
                // Graph has removed it (no longer listed); the check creates a new one.
                await CheckAsync(renewNow: false, cancellationToken);
                break;
            default:
                // "missed": some change notifications were not delivered and will not be. Nothing to renew; the users
                // they were about must be reconciled by an operator (docs/idp-events.md). IdpEventProcessor logs it
                // (5004) and counts it (tokenservice.idp.graph_subscription.missed).
                break;
        }
    }

    private async Task<GraphSubscriptionCheck> CheckAsync(bool renewNow, CancellationToken cancellationToken)
    {
        var settings = options.Value.GraphSubscription;
        if (!settings.Enabled)
        {
            return new(GraphSubscriptionAction.Disabled, null, null);
        }

        await _checking.WaitAsync(cancellationToken);
        try
        {
            var (kept, deleted) = await ConvergeAsync(await ListOursAsync(settings, cancellationToken), cancellationToken);
            GraphSubscriptionCheck result;
            if (kept is null)
            {
                result = await CreateAsync(settings, GraphSubscriptionAction.Created, deleted, cancellationToken);
            }
            else if (renewNow || kept.ExpirationDateTime - time.GetUtcNow() < settings.RenewBefore)
            {
                var renewed = await Client.RenewAsync(kept.Id, settings.ExpirationFrom(time.GetUtcNow()), cancellationToken);
                if (renewed is null)
                {
                    LogRenewalNotFound(logger, LogValue.Of(kept.Id));
                    result = await CreateAsync(settings, GraphSubscriptionAction.Recreated, deleted, cancellationToken);
                }
                else
                {
                    result = new(GraphSubscriptionAction.Renewed, renewed.Id, renewed.ExpirationDateTime, deleted);
                    LogRenewed(logger, LogValue.Of(renewed.Id), renewed.ExpirationDateTime);
                }
            }
            else
            {
                result = new(GraphSubscriptionAction.Current, kept.Id, kept.ExpirationDateTime, deleted);
            }

            health.RecordSubscription(result.SubscriptionId, result.ExpiresAt);
            return result;
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            // What this process last saw stays in the health signal: if it lapses meanwhile, /healthz says "missing".
            LogCheckFailed(logger, ex);
            throw;
        }
        finally
        {
            _checking.Release();
        }
    }

    private async Task<GraphSubscriptionCheck> CreateAsync(GraphSubscriptionOptions settings, GraphSubscriptionAction action, int deleted, CancellationToken cancellationToken)
    {
        var created = await Client.CreateAsync(
            new GraphSubscriptionRequest(
                GraphSubscriptionOptions.ChangeType,
                settings.NotificationUrl!,
                string.IsNullOrWhiteSpace(settings.LifecycleNotificationUrl) ? settings.NotificationUrl : settings.LifecycleNotificationUrl,
                GraphSubscriptionOptions.Resource,
                settings.ExpirationFrom(time.GetUtcNow()),
                options.Value.GraphClientState),
            cancellationToken);
        LogCreated(logger, LogValue.Of(created.Id), created.ExpirationDateTime);

        // Another instance may have created one at the same time: read the list again and keep one.
        var ours = await ListOursAsync(settings, cancellationToken);
        if (ours.All(s => s.Id != created.Id))
        {
            ours = [.. ours, created]; // a list that lags behind the creation must not make us delete our own
        }

        var (kept, moreDeleted) = await ConvergeAsync(ours, cancellationToken);
        return new(action, kept!.Id, kept.ExpirationDateTime, deleted + moreDeleted);
    }

    private async Task<IReadOnlyList<GraphSubscription>> ListOursAsync(GraphSubscriptionOptions settings, CancellationToken cancellationToken)
    {
        var all = await Client.ListAsync(cancellationToken);
        var now = time.GetUtcNow();
        return [.. all.Where(s =>
            string.Equals(s.Resource.Trim('/'), GraphSubscriptionOptions.Resource, StringComparison.OrdinalIgnoreCase)
            && string.Equals(s.NotificationUrl, settings.NotificationUrl, StringComparison.OrdinalIgnoreCase)
            && s.ExpirationDateTime > now)];
    }

    // Of several, the one expiring last stays (the least to renew), ties broken by the smallest id so that instances
    // converging at once keep the same one; the others are deleted (404: another instance did it).
    private async Task<(GraphSubscription? Kept, int Deleted)> ConvergeAsync(IReadOnlyList<GraphSubscription> ours, CancellationToken cancellationToken)
    {
        if (ours.Count <= 1)
        {
            return (ours.FirstOrDefault(), 0);
        }

        var ordered = ours.OrderByDescending(s => s.ExpirationDateTime).ThenBy(s => s.Id, StringComparer.Ordinal).ToList();
        var deleted = 0;
        foreach (var duplicate in ordered.Skip(1))
        {
            await Client.DeleteAsync(duplicate.Id, cancellationToken);
            deleted++;
            LogDuplicateDeleted(logger, LogValue.Of(duplicate.Id), LogValue.Of(ordered[0].Id));
        }

        return (ordered[0], deleted);
    }

    [LoggerMessage(EventId = 5010, Level = LogLevel.Information, Message = "Microsoft Graph subscription {SubscriptionId} created; it expires at {ExpiresAt:O}.")]
    private static partial void LogCreated(ILogger logger, string subscriptionId, DateTimeOffset expiresAt);

    [LoggerMessage(EventId = 5011, Level = LogLevel.Information, Message = "Microsoft Graph subscription {SubscriptionId} renewed; it expires at {ExpiresAt:O}.")]
    private static partial void LogRenewed(ILogger logger, string subscriptionId, DateTimeOffset expiresAt);

    [LoggerMessage(EventId = 5012, Level = LogLevel.Warning, Message = "Microsoft Graph answered 404 to the renewal of subscription {SubscriptionId} (lapsed or removed); creating a new one.")]
    private static partial void LogRenewalNotFound(ILogger logger, string subscriptionId);

    [LoggerMessage(EventId = 5013, Level = LogLevel.Information, Message = "Microsoft Graph subscription {SubscriptionId} reauthorized.")]
    private static partial void LogReauthorized(ILogger logger, string subscriptionId);

    [LoggerMessage(EventId = 5014, Level = LogLevel.Information, Message = "Duplicate Microsoft Graph subscription {SubscriptionId} deleted; {KeptId} is kept.")]
    private static partial void LogDuplicateDeleted(ILogger logger, string subscriptionId, string keptId);

    [LoggerMessage(EventId = 5015, Level = LogLevel.Error, Message = "Microsoft Graph subscription check failed; it runs again at the next check (docs/idp-events.md).")]
    private static partial void LogCheckFailed(ILogger logger, Exception exception);
}
