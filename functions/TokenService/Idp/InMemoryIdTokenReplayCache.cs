using System.Collections.Concurrent;
using TokenService.Sessions;

namespace TokenService.Idp;

/// <summary>Embedded-default replay cache.</summary>
public sealed class InMemoryIdTokenReplayCache(TimeProvider time) : IIdTokenReplayCache, IExpiredStateCleaner
{
    private readonly ConcurrentDictionary<string, DateTimeOffset> _seen = new(StringComparer.Ordinal);

    public ValueTask<bool> TryAddAsync(string key, DateTimeOffset expiresAt, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        while (true)
        {
            if (_seen.TryAdd(key, expiresAt))
            {
                return ValueTask.FromResult(true);
            }

            // An entry past its expiry no longer blocks (the token it guarded cannot validate any more anyway).
            if (!_seen.TryGetValue(key, out var existing) || existing > now)
            {
                return ValueTask.FromResult(false);
            }

            if (_seen.TryUpdate(key, expiresAt, existing))
            {
                return ValueTask.FromResult(true);
            }
        }
    }

    public ValueTask RemoveAsync(string key, CancellationToken cancellationToken)
    {
        _seen.TryRemove(key, out _);
        return ValueTask.CompletedTask;
    }

    public Task<int> PurgeExpiredAsync(DateTimeOffset now, CancellationToken cancellationToken)
    {
        var removed = 0;
        foreach (var (key, until) in _seen)
        {
            if (until <= now && _seen.TryRemove(new KeyValuePair<string, DateTimeOffset>(key, until)))
            {
                removed++;
            }
        }

        return Task.FromResult(removed);
    }
}
