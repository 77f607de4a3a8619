using Azure;
using Azure.Data.Tables;
using TokenService.Sessions;

namespace TokenService.Azure.Tables.Stores;

/// <summary>
/// Sessions in Table Storage, one partition per user (PartitionKey = <see cref="SessionIds.PartitionKeyForUser"/>,
/// RowKey = sid). A row <c>!user</c> in each partition carries the partition version (its ETag): opening a
/// session with eviction and revoking all are single entity group transactions that replace it with
/// <c>If-Match</c>, so the per-user limit holds under races. Refresh = one point read + one conditional write (the write
/// alone where the instance wrote the session last: SessionStateCache).
/// The user row also holds the user's index (<see cref="UserSessionIndex"/>), so that a sign-in with room under the
/// limit reads that one row by point instead of querying the partition.
/// </summary>
/// <remarks>
/// A write the pipeline retried after its first answer was lost comes back as 409/412 although it was stored.
/// It is reported as a conflict like any other; the core tells the two apart by the write id stored on the row
/// (<see cref="SessionRecord.WriteId"/>), so the mapping here must stay "conflict", never "failed".
/// </remarks>
public sealed class TableSessionStore(TableProvisioner tables, TimeProvider? time = null) : ISessionStore, IExpiredStateCleaner
{
    /// <summary>The row recording when this table's user rows began to carry indexes (<see cref="UserSessionIndex.IndexedSince"/>).</summary>
    internal const string IndexedSincePartition = "!index";
    internal const string IndexedSinceRow = "!since";
    private const string IndexedSinceColumn = "Since";

    private static readonly string[] UserRowColumns = ["UserId", SessionEntityMapper.IndexColumn, SessionEntityMapper.RecentRedemptionsColumn];
    private static readonly string[] IndexedSinceColumns = [IndexedSinceColumn];

    private readonly TimeProvider _time = time ?? TimeProvider.System;

    /// <summary>UTC ticks of the table's indexed-since row once read (it never changes), else -1.</summary>
    private long _indexedSince = -1;

    private TableClient Sessions => tables.Sessions;

    public async ValueTask<UserSessionIndex> GetUserIndexAsync(string userId, CancellationToken cancellationToken)
    {
        var partition = SessionIds.PartitionKeyForUser(userId);
        return await tables.RunAsync(Sessions, async ct =>
        {
            var row = await Sessions.GetEntityIfExistsAsync<TableEntity>(partition, SessionEntityMapper.UserRowKey, UserRowColumns, ct);
            var since = await IndexedSinceAsync(ct);
            if (!row.HasValue)
            {
                TableFaults.ThrowIfTableNotFound(row.GetRawResponse());
                return new UserSessionIndex(null, [], since);
            }

            // Another user's row (the partition key is a 96-bit hash of the user id) or a row without an index in this
            // format: no index, the partition decides.
            var entity = row.Value!;
            var ours = entity.GetString("UserId") == userId;
            var index = ours ? SessionEntityMapper.ParseIndex(entity.GetString(SessionEntityMapper.IndexColumn)) : null;
            var recent = ours ? SessionEntityMapper.ParseRedemptions(entity.GetString(SessionEntityMapper.RecentRedemptionsColumn)) : null;
            return new UserSessionIndex(SessionEntityMapper.ETagOf(entity.ETag), index, since, recent);
        }, cancellationToken);
    }

    /// <summary>
    /// When this table's user rows began to carry indexes: read once per process from its row, which the provisioner
    /// writes as "always" (0) when it creates the table, and this store when it finds the row missing: "always" for a
    /// table without any row, else "now" (an earlier version may have written it; then a missing user row proves nothing
    /// until those sessions' absolute end).
    /// </summary>
    private async ValueTask<DateTimeOffset> IndexedSinceAsync(CancellationToken cancellationToken)
    {
        var known = Volatile.Read(ref _indexedSince);
        if (known < 0)
        {
            var row = await Sessions.GetEntityIfExistsAsync<TableEntity>(IndexedSincePartition, IndexedSinceRow, IndexedSinceColumns, cancellationToken);
            if (row.HasValue && row.Value!.GetInt64(IndexedSinceColumn) is { } since)
            {
                known = since;
            }
            else
            {
                TableFaults.ThrowIfTableNotFound(row.GetRawResponse());
                known = await HoldsAnyRowAsync(cancellationToken) ? _time.GetUtcNow().UtcTicks : 0;
                try
                {
                    await Sessions.AddEntityAsync(IndexedSinceEntity(known), cancellationToken);
                }
                catch (RequestFailedException ex) when (ex.Status == 409)
                {
                    // Another instance wrote it first: its time is the table's.
                    var written = await Sessions.GetEntityAsync<TableEntity>(IndexedSincePartition, IndexedSinceRow, IndexedSinceColumns, cancellationToken);
                    known = written.Value.GetInt64(IndexedSinceColumn) ?? known;
                }
            }

            Volatile.Write(ref _indexedSince, known);
        }

        return new DateTimeOffset(known, TimeSpan.Zero);
    }

    /// <summary>
    /// Whether the table holds any row: the first page of one key-only entity, no filter. An empty table found without
    /// the mark (one that <c>infra/</c> created, not the provisioner) holds nothing of an earlier version. A first page
    /// that is empty but continues counts as rows (the service may end a page early).
    /// </summary>
    private async ValueTask<bool> HoldsAnyRowAsync(CancellationToken cancellationToken)
    {
        await foreach (var page in Sessions.QueryAsync<TableEntity>(filter: (string?)null, maxPerPage: 1, select: KeysOnly, cancellationToken: cancellationToken).AsPages(pageSizeHint: 1))
        {
            return page.Values.Count > 0 || page.ContinuationToken is not null;
        }

        return false;
    }

    private static readonly string[] KeysOnly = ["PartitionKey"];

    private static TableEntity IndexedSinceEntity(long ticks) => new(IndexedSincePartition, IndexedSinceRow) { [IndexedSinceColumn] = ticks };

    /// <summary>
    /// Marks a table just created as indexed from the start: it holds no session of an earlier version. Called by the
    /// provisioner after it created the sessions table; a row already there (another instance's) stays.
    /// </summary>
    internal static async Task MarkIndexedFromStartAsync(TableClient sessions, CancellationToken cancellationToken)
    {
        try
        {
            await sessions.AddEntityAsync(IndexedSinceEntity(0), cancellationToken);
        }
        catch (RequestFailedException ex) when (ex.Status == 409)
        {
        }
    }

    public async ValueTask<SessionRecord?> GetSessionAsync(string sessionId, CancellationToken cancellationToken)
    {
        if (SessionIds.PartitionKeyOf(sessionId) is not { } partition)
        {
            return null;
        }

        return await tables.RunAsync(Sessions, async ct =>
        {
            var entity = await Sessions.GetEntityIfExistsAsync<TableEntity>(partition, sessionId, cancellationToken: ct);
            if (!entity.HasValue)
            {
                TableFaults.ThrowIfTableNotFound(entity.GetRawResponse());
                return null;
            }

            return SessionEntityMapper.FromEntity(entity.Value!);
        }, cancellationToken);
    }

    public async ValueTask<UserSessions> GetUserSessionsAsync(string userId, CancellationToken cancellationToken)
    {
        var partition = SessionIds.PartitionKeyForUser(userId);
        return await tables.RunAsync(Sessions, async ct =>
        {
            string? version = null;
            var sessions = new List<SessionRecord>();
            HashSet<string>? redeemed = null;
            await foreach (var entity in Sessions.QueryAsync<TableEntity>(PartitionFilter(partition), cancellationToken: ct))
            {
                if (entity.RowKey == SessionEntityMapper.UserRowKey)
                {
                    version = SessionEntityMapper.ETagOf(entity.ETag);
                }
                else if (SessionEntityMapper.RedeemedReplayKey(entity.RowKey) is { } replayKey)
                {
                    (redeemed ??= new HashSet<string>(StringComparer.Ordinal)).Add(replayKey);
                }
                else if (entity.GetString("UserId") == userId)
                {
                    sessions.Add(SessionEntityMapper.FromEntity(entity));
                }
            }

            return new UserSessions(userId, version, sessions, redeemed);
        }, cancellationToken);
    }

    public async ValueTask<StoreWriteResult> ReplaceSessionAsync(SessionRecord updated, CancellationToken cancellationToken)
    {
        if (updated.ETag is null || SessionIds.PartitionKeyOf(updated.SessionId) is null)
        {
            return StoreWriteResult.NotFound;
        }

        return await tables.RunAsync(Sessions, async ct =>
        {
            try
            {
                var response = await Sessions.UpdateEntityAsync(SessionEntityMapper.ToEntity(updated), new ETag(updated.ETag), TableUpdateMode.Replace, ct);
                return new StoreWriteResult(StoreWriteStatus.Success, updated with { ETag = response.Headers.ETag?.ToString() });
            }
            catch (RequestFailedException ex) when (ex.Status == 404 && !TableFaults.IsTableGone(ex))
            {
                // The row is gone (on a re-created table too: If-Match never matches an empty table).
                return StoreWriteResult.NotFound;
            }
            catch (RequestFailedException ex) when (ex.Status == 412)
            {
                return StoreWriteResult.Conflict;
            }
        }, cancellationToken);
    }

    public async ValueTask<StoreWriteStatus> CommitAsync(UserSessionsChange change, CancellationToken cancellationToken) =>
        (await CommitReturningVersionsAsync(change, cancellationToken)).Status;

    public async ValueTask<StoreCommitResult> CommitReturningVersionsAsync(UserSessionsChange change, CancellationToken cancellationToken)
    {
        var partition = SessionIds.PartitionKeyForUser(change.UserId);
        // Every write gives the row a new ETag, which is what makes it the partition's version; it carries no time of its
        // own (it had a ChangedAt from the wall clock, which nothing read).
        var userRow = new TableEntity(partition, SessionEntityMapper.UserRowKey)
        {
            ["UserId"] = change.UserId,
        };

        // The user row goes with the partition's sessions: the cleanup deletes it once the sessions this change wrote
        // may be purged (else the table keeps a row for every user ever seen). Its delete is conditional on the ETag the
        // cleanup read, so a change since keeps it; a writer holding the version of a deleted row gets 404, a conflict,
        // and re-reads no version (then adds the row again). A session of the partition that outlives the row is no
        // harm: the next change finds no row and adds one.
        // With an index, the row also stays until the last listed session's absolute end, so that a missing row keeps
        // meaning "no live session" (GetUserIndexAsync).
        if (change.Index is { } index)
        {
            userRow[SessionEntityMapper.IndexColumn] = SessionEntityMapper.FormatIndex(index);
        }

        if (change.RecentRedemptions is { Count: > 0 } recent)
        {
            userRow[SessionEntityMapper.RecentRedemptionsColumn] = SessionEntityMapper.FormatRedemptions(recent);
        }

        if (LatestPurgeAt(change) is { } purgeAt)
        {
            userRow["PurgeAt"] = purgeAt.UtcTicks;
        }

        var actions = new List<TableTransactionAction>(1 + change.Inserts.Count + change.Updates.Count)
        {
            change.ExpectedVersion is null
                ? new(TableTransactionActionType.Add, userRow)
                : new(TableTransactionActionType.UpdateReplace, userRow, new ETag(change.ExpectedVersion)),
        };
        actions.AddRange(change.Inserts.Select(s => new TableTransactionAction(TableTransactionActionType.Add, SessionEntityMapper.ToEntity(s))));
        if (change.Redeems is { } redemption)
        {
            // Add: a row of the same ID token (redeemed already) fails the whole transaction with 409.
            actions.Add(new TableTransactionAction(TableTransactionActionType.Add, SessionEntityMapper.RedemptionEntity(partition, redemption)));
        }

        actions.AddRange(change.Updates.Select(s => new TableTransactionAction(
            TableTransactionActionType.UpdateReplace, SessionEntityMapper.ToEntity(s), s.ETag is null ? ETag.All : new ETag(s.ETag))));
        return await tables.RunAsync(Sessions, async ct =>
        {
            try
            {
                var answers = (await Sessions.SubmitTransactionAsync(actions, ct)).Value;
                // The user row is the transaction's first action, so its answer is the first: its ETag is the version.
                var version = answers.Count > 0 && answers[0].Headers.ETag is { } rowETag ? SessionEntityMapper.ETagOf(rowETag) : null;
                return new StoreCommitResult(StoreWriteStatus.Success, InsertedETags(answers, change.Inserts.Count), version);
            }
            catch (TableTransactionFailedException ex) when (TableFaults.IsConflict(ex))
            {
                // 409 (the user row or a session already exists), 412 (a version moved) or 404 (an updated row is
                // gone, a re-created table included): the snapshot is stale; the caller re-reads and decides again.
                return new StoreCommitResult(StoreWriteStatus.Conflict);
            }
        }, cancellationToken);
    }

    /// <summary>
    /// The ETags of the inserted sessions from the transaction's answers, which come in the order of its actions (the user
    /// row first, then the inserts). Null when any is missing: then no caller writes one without reading it first.
    /// </summary>
    private static string[]? InsertedETags(IReadOnlyList<Response> answers, int inserts)
    {
        if (answers.Count < 1 + inserts)
        {
            return null;
        }

        var etags = new string[inserts];
        for (var i = 0; i < inserts; i++)
        {
            if (answers[1 + i].Headers.ETag is not { } etag || SessionEntityMapper.ETagOf(etag) is not { } stored)
            {
                return null;
            }

            etags[i] = stored;
        }

        return etags;
    }

    /// <summary>
    /// The OData filter of one partition, built as a plain string: a partition key is base64url (SessionIds), so it
    /// holds no quote to escape, and CreateQueryFilter's formatting and escaping per call buys nothing here.
    /// </summary>
    internal static string PartitionFilter(string partition) => "PartitionKey eq '" + partition + "'";

    private static DateTimeOffset? LatestPurgeAt(UserSessionsChange change)
    {
        DateTimeOffset? latest = null;
        foreach (var session in change.Inserts)
        {
            latest = latest is { } l && l >= session.PurgeAt ? l : session.PurgeAt;
        }

        foreach (var session in change.Updates)
        {
            latest = latest is { } l && l >= session.PurgeAt ? l : session.PurgeAt;
        }

        foreach (var listed in change.Index ?? [])
        {
            latest = latest is { } l && l >= listed.AbsoluteExpiresAt ? l : listed.AbsoluteExpiresAt;
        }

        return latest;
    }

    public async Task<int> PurgeExpiredAsync(DateTimeOffset now, CancellationToken cancellationToken)
    {
        var filter = TableClient.CreateQueryFilter($"PurgeAt lt {now.UtcTicks}");
        return await tables.RunAsync(Sessions, async ct => await TablePurge.DeleteMatchingAsync(Sessions, filter, ct), cancellationToken);
    }
}
