using TokenService.Dpop;
using TokenService.Http;
using TokenService.Sessions;

namespace TokenService.Idp;

/// <summary>Embedded-default replay cache.</summary>
public sealed class InMemoryIdTokenReplayCache(TimeProvider time) : IIdTokenReplayCache, IExpiredStateCleaner
{
    private readonly InMemoryExpiringSet _seen = new();

    /// <summary>How many replay markers are held (the bounded-storage checks read it).</summary>
    internal int Count => _seen.Count;

    // An entry past its expiry no longer blocks: the token it guarded cannot validate any more anyway.
    public ValueTask<bool> TryAddAsync(string key, DateTimeOffset expiresAt, CancellationToken cancellationToken) =>
        ValueTask.FromResult(_seen.TryAdd(key, expiresAt, time.GetUtcNow()));

    public ValueTask RemoveAsync(string key, CancellationToken cancellationToken)
    {
        _seen.Remove(key);
        return ValueTask.CompletedTask;
    }

    public Task<int> PurgeExpiredAsync(DateTimeOffset now, CancellationToken cancellationToken) => Task.FromResult(_seen.Purge(now));
}
