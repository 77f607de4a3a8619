using System.Buffers;
using System.Globalization;
using System.Text.Json;
using Azure;
using Azure.Data.Tables;
using Microsoft.Extensions.Options;
using TokenService.Configuration;
using TokenService.Sessions;
using TokenService.SharedSignals;

namespace TokenService.Azure.Tables.Stores;

/// <summary>
/// The Shared Signals transmitter's streams and held events in the <c>ssfstreams</c> table (docs/table-storage.md), so
/// that every instance shares them and a restart loses none:
/// <list type="bullet">
/// <item>PartitionKey <c>streams</c>, RowKey the stream id: the stream row (owner, audiences, status, push delivery, its
/// failures and retry time, the drop count, activity and last delivery, and the push lease: owner and end). Every change
/// is a Replace with If-Match on the ETag read (<see cref="UpdateAsync"/>), so two instances never lose a change and only
/// one takes a lease. One partition, so that the stream list every session end needs is one partition query.</item>
/// <item>PartitionKey the stream id, RowKey <c>e</c> + the event's time (UTC ticks, 19 digits) + a sequence of this
/// process (12 digits) + <c>-</c> + its <c>jti</c>: the held events, in the order they were queued (a partition query
/// returns them by RowKey), each with its signed SET once made.</item>
/// </list>
/// The bound (<c>SharedSignals:MaxEventsPerStream</c>) is applied after each insert: the oldest events past it are
/// deleted (each conditional on the ETag seen) and the ones this instance deleted are added to the stream's drop count.
/// </summary>
public sealed class TableSsfStreamStore(TableProvisioner tables, IOptions<SharedSignalsOptions> options) : ISsfStreamStore
{
    private const string StreamsPartition = "streams";
    private const string EventPrefix = "e";
    private const int MaxUpdateAttempts = 16;

    private static readonly string[] KeysOnly = ["PartitionKey", "RowKey"];
    private static readonly string[] KeysAndJti = ["PartitionKey", "RowKey", "Jti"];

    /// <summary>Orders the events one process queues within one clock tick (a fake clock that stands still, a burst).</summary>
    private static long _sequence;

    private TableClient Table => tables.SsfStreams;

    public async ValueTask<bool> TryAddAsync(SsfStream stream, int maxPerReceiver, CancellationToken cancellationToken)
    {
        var entity = ToEntity(stream);
        return await tables.RunAsync(Table, async ct =>
        {
            if (CountOwned(await QueryStreamsAsync(ct), stream.OwnerClientId) >= maxPerReceiver)
            {
                return false;
            }

            await Table.AddEntityAsync(entity, ct);

            // Two creates racing past the count: the earliest streams (by creation, then id) stay, a later one goes again.
            var owned = (await QueryStreamsAsync(ct)).Where(s => s.GetString("Owner") == stream.OwnerClientId)
                .OrderBy(s => s.GetInt64("CreatedAt")).ThenBy(s => s.RowKey, StringComparer.Ordinal).Select(s => s.RowKey).Take(maxPerReceiver);
            if (!owned.Contains(stream.StreamId))
            {
                await Table.DeleteEntityAsync(StreamsPartition, stream.StreamId, ETag.All, ct);
                return false;
            }

            return true;
        }, cancellationToken);
    }

    public async ValueTask<SsfStream?> GetAsync(string streamId, CancellationToken cancellationToken) =>
        IsLegalKey(streamId) ? await tables.RunAsync(Table, async ct => await ReadStreamAsync(streamId, ct), cancellationToken) : null;

    public async ValueTask<IReadOnlyList<SsfStream>> ListAsync(CancellationToken cancellationToken) =>
        await tables.RunAsync<IReadOnlyList<SsfStream>>(Table, async ct => [.. (await QueryStreamsAsync(ct)).Select(StreamFromEntity)], cancellationToken);

    public async ValueTask<SsfStream?> UpdateAsync(string streamId, Func<SsfStream, bool> change, CancellationToken cancellationToken)
    {
        if (!IsLegalKey(streamId))
        {
            return null;
        }

        return await tables.RunAsync(Table, async ct =>
        {
            for (var attempt = 0; attempt < MaxUpdateAttempts; attempt++)
            {
                if (await ReadStreamAsync(streamId, ct) is not { } stream)
                {
                    return null;
                }

                if (!change(stream))
                {
                    return stream;
                }

                try
                {
                    var response = await Table.UpdateEntityAsync(ToEntity(stream), new ETag(stream.Version!), TableUpdateMode.Replace, ct);
                    stream.Version = response.Headers.ETag?.ToString();
                    return stream;
                }
                catch (RequestFailedException ex) when (TableFaults.IsConflict(ex))
                {
                    // Another instance changed (or deleted) the stream since it was read: apply the change to its state.
                }
            }

            throw new DependencyUnavailableException(TableFaults.Dependency, $"Stream {streamId} kept changing under {MaxUpdateAttempts} attempts to update it", null);
        }, cancellationToken);
    }

    public async ValueTask<bool> DeleteAsync(string streamId, CancellationToken cancellationToken)
    {
        if (!IsLegalKey(streamId))
        {
            return false;
        }

        return await tables.RunAsync(Table, async ct =>
        {
            // The stream row first: once it is gone nothing queues on the stream or delivers it; then its events.
            var response = await Table.DeleteEntityAsync(StreamsPartition, streamId, ETag.All, ct);
            TableFaults.ThrowIfTableNotFound(response);
            await DeleteEventsAsync(streamId, await QueryEventKeysAsync(streamId, ct), ct);
            return response.Status == 204;
        }, cancellationToken);
    }

    public async ValueTask<SsfEnqueueResult> EnqueueAsync(SsfStream stream, IReadOnlyList<SsfOutboxEntry> entries, int capacity, CancellationToken cancellationToken)
    {
        if (stream.Status == SsfStreamStatus.Disabled || entries.Count == 0)
        {
            return new SsfEnqueueResult(0, 0);
        }

        var rows = entries.Select(e => ToEntity(stream.StreamId, e)).ToList();
        return await tables.RunAsync(Table, async ct =>
        {
            foreach (var chunk in rows.Chunk(100))
            {
                // Upsert: a retry of a transaction whose answer was lost stores the same rows again, not a conflict.
                await Table.SubmitTransactionAsync(chunk.Select(r => new TableTransactionAction(TableTransactionActionType.UpsertReplace, r)), ct);
            }

            var held = await QueryEventKeysAsync(stream.StreamId, ct);
            long dropped = 0;
            if (held.Count > capacity)
            {
                dropped = await DeleteEventsAsync(stream.StreamId, held.Take(held.Count - capacity).ToList(), ct);
                if (dropped > 0)
                {
                    await UpdateAsync(stream.StreamId, s =>
                    {
                        s.Dropped += dropped;
                        return true;
                    }, ct);
                }
            }

            return new SsfEnqueueResult(rows.Count, dropped);
        }, cancellationToken);
    }

    public async ValueTask<SsfPollResult> PollAsync(SsfStream stream, IReadOnlyCollection<string> acknowledged, int maxEvents, CancellationToken cancellationToken) =>
        await tables.RunAsync(Table, async ct =>
        {
            var removed = 0;
            if (acknowledged.Count > 0)
            {
                var acked = new List<TableEntity>();
                await foreach (var row in Table.QueryAsync<TableEntity>(EventsFilter(stream.StreamId), maxPerPage: 1000, select: KeysAndJti, cancellationToken: ct))
                {
                    if (row.GetString("Jti") is { } jti && acknowledged.Contains(jti))
                    {
                        acked.Add(row);
                    }
                }

                removed = (int)await DeleteEventsAsync(stream.StreamId, acked, ct);
            }

            if (stream.Status != SsfStreamStatus.Enabled)
            {
                return new SsfPollResult([], false, removed);
            }

            var batch = new List<SsfOutboxEntry>();
            var more = false;
            await foreach (var row in Table.QueryAsync<TableEntity>(EventsFilter(stream.StreamId), maxPerPage: Math.Min(maxEvents + 1, 1000), cancellationToken: ct))
            {
                if (batch.Count == maxEvents)
                {
                    more = true;
                    break;
                }

                batch.Add(EntryFromEntity(row));
            }

            return new SsfPollResult(batch, more, removed);
        }, cancellationToken);

    public async ValueTask<SsfOutboxEntry?> PeekAsync(SsfStream stream, CancellationToken cancellationToken)
    {
        if (stream.Status != SsfStreamStatus.Enabled)
        {
            return null;
        }

        return await tables.RunAsync(Table, async ct =>
        {
            await foreach (var row in Table.QueryAsync<TableEntity>(EventsFilter(stream.StreamId), maxPerPage: 1, cancellationToken: ct))
            {
                return EntryFromEntity(row);
            }

            return null;
        }, cancellationToken);
    }

    public async ValueTask RemoveAsync(SsfStream stream, SsfOutboxEntry entry, CancellationToken cancellationToken) =>
        await tables.RunAsync(Table, async ct =>
        {
            // Gone already (acknowledged twice, or dropped) is fine; a missing table is told apart and re-created.
            var response = await Table.DeleteEntityAsync(stream.StreamId, entry.StoreKey, ETag.All, ct);
            TableFaults.ThrowIfTableNotFound(response);
        }, cancellationToken);

    public async ValueTask SaveSetAsync(SsfStream stream, SsfOutboxEntry entry, CancellationToken cancellationToken) =>
        await tables.RunAsync(Table, async ct =>
        {
            try
            {
                await Table.UpdateEntityAsync(new TableEntity(stream.StreamId, entry.StoreKey) { ["Set"] = entry.Set }, ETag.All, TableUpdateMode.Merge, ct);
            }
            catch (RequestFailedException ex) when (TableFaults.IsConflict(ex))
            {
                // Acknowledged or dropped meanwhile: nothing to keep.
            }
        }, cancellationToken);

    public async ValueTask ClearAsync(SsfStream stream, CancellationToken cancellationToken) =>
        await tables.RunAsync(Table, async ct => await DeleteEventsAsync(stream.StreamId, await QueryEventKeysAsync(stream.StreamId, ct), ct), cancellationToken);

    public async ValueTask<int> CountAsync(SsfStream stream, CancellationToken cancellationToken) =>
        await tables.RunAsync(Table, async ct => (await QueryEventKeysAsync(stream.StreamId, ct)).Count, cancellationToken);

    private async ValueTask<SsfStream?> ReadStreamAsync(string streamId, CancellationToken cancellationToken)
    {
        var entity = await Table.GetEntityIfExistsAsync<TableEntity>(StreamsPartition, streamId, cancellationToken: cancellationToken);
        if (!entity.HasValue)
        {
            TableFaults.ThrowIfTableNotFound(entity.GetRawResponse());
            return null;
        }

        return StreamFromEntity(entity.Value!);
    }

    private async ValueTask<List<TableEntity>> QueryStreamsAsync(CancellationToken cancellationToken)
    {
        var rows = new List<TableEntity>();
        await foreach (var row in Table.QueryAsync<TableEntity>(TableClient.CreateQueryFilter($"PartitionKey eq {StreamsPartition}"), maxPerPage: 1000, cancellationToken: cancellationToken))
        {
            rows.Add(row);
        }

        return rows;
    }

    private static int CountOwned(List<TableEntity> streams, string owner) => streams.Count(s => s.GetString("Owner") == owner);

    /// <summary>The stream's held events, keys only (and ETags), oldest first.</summary>
    private async ValueTask<List<TableEntity>> QueryEventKeysAsync(string streamId, CancellationToken cancellationToken)
    {
        var rows = new List<TableEntity>();
        await foreach (var row in Table.QueryAsync<TableEntity>(EventsFilter(streamId), maxPerPage: 1000, select: KeysOnly, cancellationToken: cancellationToken))
        {
            rows.Add(row);
        }

        return rows;
    }

    /// <summary>Deletes the rows, in transactions of up to 100, each conditional on the ETag read; how many this call deleted.</summary>
    private async ValueTask<long> DeleteEventsAsync(string streamId, IReadOnlyList<TableEntity> rows, CancellationToken cancellationToken)
    {
        long deleted = 0;
        foreach (var chunk in rows.Chunk(100))
        {
            try
            {
                await Table.SubmitTransactionAsync(chunk.Select(r => new TableTransactionAction(TableTransactionActionType.Delete, r, r.ETag)), cancellationToken);
                deleted += chunk.Length;
                continue;
            }
            catch (TableTransactionFailedException ex) when (TableFaults.IsConflict(ex))
            {
                // One of them went meanwhile (another instance's poll or trim): the others one by one.
            }

            foreach (var row in chunk)
            {
                var response = await Table.DeleteEntityAsync(streamId, row.RowKey, row.ETag, cancellationToken);
                TableFaults.ThrowIfTableNotFound(response);
                if (response.Status == 204)
                {
                    deleted++;
                }
            }
        }

        return deleted;
    }

    private static string EventsFilter(string streamId) =>
        TableClient.CreateQueryFilter($"PartitionKey eq {streamId} and RowKey ge {EventPrefix} and RowKey lt {"f"}");

    /// <summary>Stream ids are ours (hex); anything else a receiver sends names no stream and must not reach a key.</summary>
    private static bool IsLegalKey(string streamId) => streamId.Length is > 0 and <= 64 && streamId.All(char.IsAsciiHexDigitLower);

    private static TableEntity ToEntity(SsfStream stream)
    {
        lock (stream.Gate)
        {
            var entity = new TableEntity(StreamsPartition, stream.StreamId)
            {
                ["Owner"] = stream.OwnerClientId,
                ["Audiences"] = WriteStrings(stream.Audiences),
                ["EventsRequested"] = stream.EventsRequested is { } requested ? WriteStrings(requested) : null,
                ["Description"] = stream.Description,
                ["Status"] = SsfProtocol.StatusName(stream.Status),
                ["StatusReason"] = stream.StatusReason,
                ["PushEndpoint"] = stream.Push?.EndpointUrl.OriginalString,
                ["PushAuthorization"] = stream.Push?.AuthorizationHeader,
                ["PushFailures"] = stream.PushFailures,
                ["PushRetryAt"] = stream.PushRetryAt?.UtcTicks,
                ["Dropped"] = stream.Dropped,
                ["CreatedAt"] = stream.CreatedAt.UtcTicks,
                ["LastActivityAt"] = stream.LastActivityAt.UtcTicks,
                ["LastDeliveryAt"] = stream.LastDeliveryAt?.UtcTicks,
                ["LeaseOwner"] = stream.LeaseOwner,
                ["LeaseUntil"] = stream.LeaseUntil?.UtcTicks,
            };
            return entity;
        }
    }

    private SsfStream StreamFromEntity(TableEntity entity) =>
        new(entity.RowKey, entity.GetString("Owner") ?? string.Empty, ReadStrings(entity.GetString("Audiences")) ?? [], options.Value.MaxEventsPerStream)
        {
            EventsRequested = ReadStrings(entity.GetString("EventsRequested")),
            Description = entity.GetString("Description"),
            Status = SsfProtocol.ParseStatus(entity.GetString("Status")) ?? SsfStreamStatus.Enabled,
            StatusReason = entity.GetString("StatusReason"),
            Push = entity.GetString("PushEndpoint") is { } endpoint ? new SsfPushDelivery(new Uri(endpoint, UriKind.Absolute), entity.GetString("PushAuthorization")) : null,
            PushFailures = entity.GetInt32("PushFailures") ?? 0,
            PushRetryAt = Time(entity.GetInt64("PushRetryAt")),
            Dropped = entity.GetInt64("Dropped") ?? 0,
            CreatedAt = Time(entity.GetInt64("CreatedAt")) ?? default,
            LastActivityAt = Time(entity.GetInt64("LastActivityAt")) ?? default,
            LastDeliveryAt = Time(entity.GetInt64("LastDeliveryAt")),
            LeaseOwner = entity.GetString("LeaseOwner"),
            LeaseUntil = Time(entity.GetInt64("LeaseUntil")),
            Version = entity.ETag.ToString(),
        };

    private static TableEntity ToEntity(string streamId, SsfOutboxEntry entry)
    {
        var sequence = Interlocked.Increment(ref _sequence);
        var key = string.Create(CultureInfo.InvariantCulture, $"{EventPrefix}{entry.OccurredAt.UtcTicks:D19}{sequence % 1_000_000_000_000:D12}-{entry.Jti}");
        return new TableEntity(streamId, key)
        {
            ["Jti"] = entry.Jti,
            ["EventType"] = entry.EventType,
            ["OccurredAt"] = entry.OccurredAt.UtcTicks,
            ["Txn"] = entry.Txn,
            ["SessionId"] = entry.SessionId,
            ["Subject"] = entry.Subject,
            ["Reason"] = entry.Reason?.Code,
            ["State"] = entry.State,
            ["RevokedId"] = entry.RevokedId,
            ["RevokedUntil"] = entry.RevokedUntil?.UtcTicks,
            ["Set"] = entry.Set,
        };
    }

    private static SsfOutboxEntry EntryFromEntity(TableEntity row) => new()
    {
        Jti = row.GetString("Jti") ?? string.Empty,
        EventType = row.GetString("EventType") ?? string.Empty,
        OccurredAt = Time(row.GetInt64("OccurredAt")) ?? default,
        Txn = row.GetString("Txn"),
        SessionId = row.GetString("SessionId"),
        Subject = row.GetString("Subject"),
        Reason = SessionEndReason.TryParse(row.GetString("Reason"), out var reason) ? reason : null,
        State = row.GetString("State"),
        RevokedId = row.GetString("RevokedId"),
        RevokedUntil = Time(row.GetInt64("RevokedUntil")),
        StoreKey = row.RowKey,
        Set = row.GetString("Set"),
    };

    private static DateTimeOffset? Time(long? ticks) => ticks is { } t ? new DateTimeOffset(t, TimeSpan.Zero) : null;

    private static string WriteStrings(IReadOnlyList<string> values)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartArray();
            foreach (var value in values)
            {
                writer.WriteStringValue(value);
            }

            writer.WriteEndArray();
        }

        return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private static List<string>? ReadStrings(string? json)
    {
        if (json is null)
        {
            return null;
        }

        using var document = JsonDocument.Parse(json);
        return [.. document.RootElement.EnumerateArray().Select(e => e.GetString() ?? string.Empty)];
    }
}
