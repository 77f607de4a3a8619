using TokenService.Sessions;

namespace TokenService.Events;

/// <summary>
/// Event ids already handled, remembered for Event Grid's retry window so that a redelivery changes nothing
/// twice. Unreachable store → <see cref="DependencyUnavailableException"/> (Event Grid retries).
/// </summary>
public interface IProcessedEventStore
{
    ValueTask<bool> IsProcessedAsync(string key, CancellationToken cancellationToken);

    ValueTask MarkProcessedAsync(string key, DateTimeOffset forgetAfter, CancellationToken cancellationToken);
}

/// <summary>Looks a user up in Microsoft Graph (Graph's UserUpdated notifications carry ids only).</summary>
public interface IGraphUserLookup
{
    /// <summary>The user's state; an outage throws <see cref="DependencyUnavailableException"/>.</summary>
    ValueTask<GraphUserState> GetUserStateAsync(string userId, CancellationToken cancellationToken);
}
