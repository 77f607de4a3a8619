using System.Collections.Concurrent;
using System.Globalization;

namespace TokenService.Sessions;

/// <summary>
/// Embedded-default session store with the same compare-and-swap semantics the Table Storage store gives:
/// one partition per user, a partition version, and per-record ETags.
/// </summary>
public sealed class InMemorySessionStore : ISessionStore, IExpiredStateCleaner
{
    private readonly ConcurrentDictionary<string, Partition> _partitions = new(StringComparer.Ordinal);
    private long _etagCounter;

    private sealed class Partition
    {
        public readonly Lock Gate = new();
        public string? Version;

        /// <summary>Set (under <see cref="Gate"/>) when a purge left the partition empty and dropped it: writers take a new one.</summary>
        public bool Removed;
        public readonly Dictionary<string, SessionRecord> Sessions = new(StringComparer.Ordinal);

        /// <summary>The index the last commit wrote (null: it wrote none), kept as the Table store keeps it on the user row.</summary>
        public IndexedSession[]? Index;

        /// <summary>The latest redemptions the last commit kept on the user's row (<see cref="UserSessionIndex.RecentRedemptions"/>).</summary>
        public IdTokenRedemption[]? Recent;

        /// <summary>Replay keys of the ID tokens redeemed by commits, until their purge time.</summary>
        public readonly Dictionary<string, DateTimeOffset> Redeemed = new(StringComparer.Ordinal);
    }

    /// <summary>How many session records are held, ended ones included until their purge (the bounded-storage checks read it).</summary>
    internal int Count => Sum(partition => partition.Sessions.Count);

    /// <summary>How many ID-token redemptions are held until their purge (the bounded-storage checks read it).</summary>
    internal int RedemptionCount => Sum(partition => partition.Redeemed.Count);

    private int Sum(Func<Partition, int> countOf)
    {
        var count = 0;
        foreach (var partition in _partitions.Values)
        {
            lock (partition.Gate)
            {
                count += countOf(partition);
            }
        }

        return count;
    }

    /// <summary>How many user partitions are held (a purge drops the ones it empties).</summary>
    internal int PartitionCount => _partitions.Count;

    public ValueTask<SessionRecord?> GetSessionAsync(string sessionId, CancellationToken cancellationToken)
    {
        if (SessionIds.PartitionKeyOf(sessionId) is not { } pk || !_partitions.TryGetValue(pk, out var partition))
        {
            return ValueTask.FromResult<SessionRecord?>(null);
        }

        lock (partition.Gate)
        {
            return ValueTask.FromResult(partition.Sessions.GetValueOrDefault(sessionId));
        }
    }

    public ValueTask<UserSessionIndex> GetUserIndexAsync(string userId, CancellationToken cancellationToken)
    {
        // This store starts empty with its process, so no session of a version without indexes can be in it: a user
        // without a partition has no session (a purge drops a partition only once it is empty).
        if (!_partitions.TryGetValue(SessionIds.PartitionKeyForUser(userId), out var partition))
        {
            return ValueTask.FromResult(NoRow);
        }

        lock (partition.Gate)
        {
            return ValueTask.FromResult(
                partition.Removed || partition.Version is null ? NoRow : new UserSessionIndex(partition.Version, partition.Index, DateTimeOffset.MinValue, partition.Recent));
        }
    }

    private static readonly UserSessionIndex NoRow = new(null, [], DateTimeOffset.MinValue);

    public ValueTask<UserSessions> GetUserSessionsAsync(string userId, CancellationToken cancellationToken)
    {
        if (!_partitions.TryGetValue(SessionIds.PartitionKeyForUser(userId), out var partition))
        {
            return ValueTask.FromResult(new UserSessions(userId, null, []));
        }

        lock (partition.Gate)
        {
            var sessions = partition.Sessions.Values.Where(s => s.UserId == userId).ToList();
            return ValueTask.FromResult(new UserSessions(userId, partition.Version, sessions, partition.Redeemed.Keys.ToHashSet(StringComparer.Ordinal)));
        }
    }

    public ValueTask<StoreWriteResult> ReplaceSessionAsync(SessionRecord updated, CancellationToken cancellationToken)
    {
        if (SessionIds.PartitionKeyOf(updated.SessionId) is not { } pk || !_partitions.TryGetValue(pk, out var partition))
        {
            return ValueTask.FromResult(StoreWriteResult.NotFound);
        }

        lock (partition.Gate)
        {
            if (!partition.Sessions.TryGetValue(updated.SessionId, out var current))
            {
                return ValueTask.FromResult(StoreWriteResult.NotFound);
            }

            if (current.ETag != updated.ETag)
            {
                return ValueTask.FromResult(StoreWriteResult.Conflict);
            }

            var stored = updated with { ETag = NextETag() };
            partition.Sessions[updated.SessionId] = stored;
            return ValueTask.FromResult(new StoreWriteResult(StoreWriteStatus.Success, stored));
        }
    }

    public async ValueTask<StoreWriteStatus> CommitAsync(UserSessionsChange change, CancellationToken cancellationToken) =>
        (await CommitReturningVersionsAsync(change, cancellationToken)).Status;

    public ValueTask<StoreCommitResult> CommitReturningVersionsAsync(UserSessionsChange change, CancellationToken cancellationToken)
    {
        var key = SessionIds.PartitionKeyForUser(change.UserId);
        while (true)
        {
            var partition = _partitions.GetOrAdd(key, _ => new Partition());
            lock (partition.Gate)
            {
                if (!partition.Removed)
                {
                    return ValueTask.FromResult(Commit(partition, change));
                }
            }

            // A purge dropped the emptied partition between the lookup and the lock: the next lookup makes a new one.
        }
    }

    /// <summary>Applies <paramref name="change"/> to <paramref name="partition"/>; the caller holds its gate.</summary>
    private StoreCommitResult Commit(Partition partition, UserSessionsChange change)
    {
        if (partition.Version != change.ExpectedVersion)
        {
            return new(StoreWriteStatus.Conflict);
        }

        foreach (var update in change.Updates)
        {
            if (!partition.Sessions.TryGetValue(update.SessionId, out var current) || current.ETag != update.ETag)
            {
                return new(StoreWriteStatus.Conflict);
            }
        }

        foreach (var insert in change.Inserts)
        {
            if (partition.Sessions.ContainsKey(insert.SessionId))
            {
                return new(StoreWriteStatus.Conflict);
            }
        }

        if (change.Redeems is { } redeemed && partition.Redeemed.ContainsKey(redeemed.ReplayKey))
        {
            return new(StoreWriteStatus.Conflict);
        }

        if (change.Redeems is { } redemption)
        {
            partition.Redeemed[redemption.ReplayKey] = redemption.ExpiresAt;
        }

        foreach (var record in change.Updates)
        {
            partition.Sessions[record.SessionId] = record with { ETag = NextETag() };
        }

        var inserted = new string[change.Inserts.Count];
        for (var i = 0; i < inserted.Length; i++)
        {
            var record = change.Inserts[i] with { ETag = NextETag() };
            partition.Sessions[record.SessionId] = record;
            inserted[i] = record.ETag!;
        }

        partition.Version = NextETag();
        partition.Index = change.Index?.ToArray();
        partition.Recent = change.RecentRedemptions?.ToArray();
        return new(StoreWriteStatus.Success, inserted, partition.Version);
    }

    public Task<int> PurgeExpiredAsync(DateTimeOffset now, CancellationToken cancellationToken)
    {
        var removed = 0;
        foreach (var (key, partition) in _partitions)
        {
            lock (partition.Gate)
            {
                foreach (var (sid, record) in partition.Sessions.ToList())
                {
                    if (record.PurgeAt <= now && partition.Sessions.Remove(sid))
                    {
                        removed++;
                    }
                }

                foreach (var (replayKey, expiresAt) in partition.Redeemed.ToList())
                {
                    if (expiresAt <= now && partition.Redeemed.Remove(replayKey))
                    {
                        removed++;
                    }
                }

                // A partition with no session (nor redemption) left goes too, or the store would hold one per user ever seen (storage
                // bounded by the active population, not by time). Its version goes with it: a writer holding the old
                // version gets a conflict and re-reads, as after any concurrent change.
                if (partition.Sessions.Count == 0 && partition.Redeemed.Count == 0)
                {
                    partition.Removed = true;
                    _partitions.TryRemove(new KeyValuePair<string, Partition>(key, partition));
                }
            }
        }

        return Task.FromResult(removed);
    }

    private string NextETag() =>
        "W/\"" + Interlocked.Increment(ref _etagCounter).ToString(CultureInfo.InvariantCulture) + "\"";
}
