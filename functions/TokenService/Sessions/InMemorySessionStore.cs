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
        public readonly Dictionary<string, SessionRecord> Sessions = new(StringComparer.Ordinal);
    }

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

    public ValueTask<UserSessions> GetUserSessionsAsync(string userId, CancellationToken cancellationToken)
    {
        if (!_partitions.TryGetValue(SessionIds.PartitionKeyForUser(userId), out var partition))
        {
            return ValueTask.FromResult(new UserSessions(userId, null, []));
        }

        lock (partition.Gate)
        {
            var sessions = partition.Sessions.Values.Where(s => s.UserId == userId).ToList();
            return ValueTask.FromResult(new UserSessions(userId, partition.Version, sessions));
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

    public ValueTask<StoreWriteStatus> CommitAsync(UserSessionsChange change, CancellationToken cancellationToken)
    {
        var partition = _partitions.GetOrAdd(SessionIds.PartitionKeyForUser(change.UserId), _ => new Partition());
        lock (partition.Gate)
        {
            if (partition.Version != change.ExpectedVersion)
            {
                return ValueTask.FromResult(StoreWriteStatus.Conflict);
            }

            foreach (var update in change.Updates)
            {
                if (!partition.Sessions.TryGetValue(update.SessionId, out var current) || current.ETag != update.ETag)
                {
                    return ValueTask.FromResult(StoreWriteStatus.Conflict);
                }
            }

            foreach (var insert in change.Inserts)
            {
                if (partition.Sessions.ContainsKey(insert.SessionId))
                {
                    return ValueTask.FromResult(StoreWriteStatus.Conflict);
                }
            }

            foreach (var record in change.Updates.Concat(change.Inserts))
            {
                partition.Sessions[record.SessionId] = record with { ETag = NextETag() };
            }

            partition.Version = NextETag();
            return ValueTask.FromResult(StoreWriteStatus.Success);
        }
    }

    public Task<int> PurgeExpiredAsync(DateTimeOffset now, CancellationToken cancellationToken)
    {
        var removed = 0;
        foreach (var partition in _partitions.Values)
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
            }
        }

        return Task.FromResult(removed);
    }

    private string NextETag() =>
        "W/\"" + Interlocked.Increment(ref _etagCounter).ToString(CultureInfo.InvariantCulture) + "\"";
}
