
namespace TokenService.Dpop;

/// <summary>
/// Embedded-default replay cache (one process). Entries live for a proof lifetime only, so it drops expired entries
/// itself, at most every <see cref="PurgeInterval"/> on an insert: a busy instance must not hold an hour of proofs.
/// </summary>
public sealed class InMemoryDpopReplayCache(TimeProvider time) : IDpopReplayCache
{
    internal static readonly TimeSpan PurgeInterval = TimeSpan.FromMinutes(1);

    private readonly InMemoryExpiringSet _seen = new();
    private long _nextPurgeTicks;

    public ValueTask<bool> TryAddAsync(string key, DateTimeOffset expiresAt, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var next = Interlocked.Read(ref _nextPurgeTicks);
        if (now.UtcTicks >= next && Interlocked.CompareExchange(ref _nextPurgeTicks, (now + PurgeInterval).UtcTicks, next) == next)
        {
            _seen.Purge(now);
        }

        return ValueTask.FromResult(_seen.TryAdd(key, expiresAt, now));
    }

    /// <summary>How many proofs are remembered (the bounded-storage checks read it).</summary>
    internal int Count => _seen.Count;

    /// <summary>Removes the entries expired at <paramref name="now"/>; returns how many.</summary>
    public int PurgeExpired(DateTimeOffset now) => _seen.Purge(now);
}
