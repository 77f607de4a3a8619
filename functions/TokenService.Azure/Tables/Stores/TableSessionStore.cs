using System.Globalization;
using TokenService.Sessions;

namespace TokenService.Azure.Tables.Stores;

/// <summary>
/// Sessions in Table Storage, one partition per user (PartitionKey = <see cref="SessionIds.PartitionKeyForUser"/>,
/// RowKey = sid). A row <c>!user</c> in each partition carries the partition version (its ETag): opening a
/// session with eviction and revoking all are single entity group transactions that replace it with
/// <c>If-Match</c>, so the per-user limit holds under races. Refresh = one point read + one conditional write.
/// </summary>
public sealed class TableSessionStore(TableProvisioner tables) : ISessionStore, IExpiredStateCleaner
{
    private TableServiceClient Client => tables.Client;

    public async ValueTask<SessionRecord?> GetSessionAsync(string sessionId, CancellationToken cancellationToken)
    {
        if (SessionIds.PartitionKeyOf(sessionId) is not { } partition)
        {
            return null;
        }

        await tables.EnsureAsync(cancellationToken);
        var entity = await Client.GetEntityAsync(TableNames.Sessions, partition, sessionId, cancellationToken);
        return entity is null ? null : SessionEntityMapper.FromEntity(entity);
    }

    public async ValueTask<UserSessions> GetUserSessionsAsync(string userId, CancellationToken cancellationToken)
    {
        await tables.EnsureAsync(cancellationToken);
        var partition = SessionIds.PartitionKeyForUser(userId);
        string? version = null;
        var sessions = new List<SessionRecord>();
        await foreach (var entity in Client.QueryAsync(TableNames.Sessions, "PartitionKey eq " + TableKeys.Literal(partition), cancellationToken: cancellationToken))
        {
            if (entity.RowKey == SessionEntityMapper.UserRowKey)
            {
                version = entity.ETag;
            }
            else if (entity.GetString("UserId") == userId)
            {
                sessions.Add(SessionEntityMapper.FromEntity(entity));
            }
        }

        return new UserSessions(userId, version, sessions);
    }

    public async ValueTask<StoreWriteResult> ReplaceSessionAsync(SessionRecord updated, CancellationToken cancellationToken)
    {
        if (updated.ETag is null || SessionIds.PartitionKeyOf(updated.SessionId) is null)
        {
            return StoreWriteResult.NotFound;
        }

        await tables.EnsureAsync(cancellationToken);
        var result = await Client.UpdateAsync(TableNames.Sessions, SessionEntityMapper.ToEntity(updated), updated.ETag, TableUpdateMode.Replace, cancellationToken);
        return result.Status switch
        {
            TableWriteStatus.Success => new StoreWriteResult(StoreWriteStatus.Success, updated with { ETag = result.ETag }),
            TableWriteStatus.NotFound => StoreWriteResult.NotFound,
            _ => StoreWriteResult.Conflict,
        };
    }

    public async ValueTask<StoreWriteStatus> CommitAsync(UserSessionsChange change, CancellationToken cancellationToken)
    {
        await tables.EnsureAsync(cancellationToken);
        var partition = SessionIds.PartitionKeyForUser(change.UserId);
        var userRow = new TableEntity(partition, SessionEntityMapper.UserRowKey)
        {
            ["UserId"] = change.UserId,
            ["ChangedAt"] = DateTimeOffset.UtcNow.UtcTicks,
        };
        var operations = new List<TableBatchOperation>
        {
            change.ExpectedVersion is null
                ? new(TableBatchOperationKind.Insert, userRow)
                : new(TableBatchOperationKind.Replace, userRow, change.ExpectedVersion),
        };
        operations.AddRange(change.Inserts.Select(s => new TableBatchOperation(TableBatchOperationKind.Insert, SessionEntityMapper.ToEntity(s))));
        operations.AddRange(change.Updates.Select(s => new TableBatchOperation(TableBatchOperationKind.Replace, SessionEntityMapper.ToEntity(s), s.ETag ?? "*")));
        var result = await Client.SubmitBatchAsync(TableNames.Sessions, operations, cancellationToken);
        if (result.Succeeded)
        {
            return StoreWriteStatus.Success;
        }

        // 409 (the user row or a session already exists), 412 (a version moved) or 404 (an updated row is gone):
        // the snapshot is stale; the caller re-reads and decides again.
        if (result.FailedStatus is 409 or 412 or 404)
        {
            return StoreWriteStatus.Conflict;
        }

        throw new TableStorageException(result.FailedStatus, result.ErrorCode, $"Session commit failed: {result.FailedStatus} {result.ErrorCode}.");
    }

    public async Task<int> PurgeExpiredAsync(DateTimeOffset now, CancellationToken cancellationToken)
    {
        await tables.EnsureAsync(cancellationToken);
        var filter = "PurgeAt lt " + now.UtcTicks.ToString(CultureInfo.InvariantCulture) + "L";
        return await TablePurge.DeleteMatchingAsync(Client, TableNames.Sessions, filter, cancellationToken);
    }
}
