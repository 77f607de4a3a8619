using TokenService.Http;
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
    /// <summary>The user's <c>accountEnabled</c>, or null when Graph does not know the user.</summary>
    ValueTask<bool?> IsAccountEnabledAsync(string userId, CancellationToken cancellationToken);
}

/// <summary>Embedded-default processed-event store.</summary>
public sealed class InMemoryProcessedEventStore : IProcessedEventStore, IExpiredStateCleaner
{
    private readonly InMemoryExpiringSet _seen = new();

    public ValueTask<bool> IsProcessedAsync(string key, CancellationToken cancellationToken) => ValueTask.FromResult(_seen.Contains(key));

    public ValueTask MarkProcessedAsync(string key, DateTimeOffset forgetAfter, CancellationToken cancellationToken)
    {
        _seen.Set(key, forgetAfter);
        return ValueTask.CompletedTask;
    }

    public Task<int> PurgeExpiredAsync(DateTimeOffset now, CancellationToken cancellationToken) => Task.FromResult(_seen.Purge(now));
}
