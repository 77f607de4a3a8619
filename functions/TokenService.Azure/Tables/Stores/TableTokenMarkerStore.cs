using System.Security.Cryptography;
using Azure;
using Azure.Data.Tables;
using TokenService.Events;
using TokenService.Idp;
using TokenService.Sessions;
using TokenService.Tokens;

namespace TokenService.Azure.Tables.Stores;

/// <summary>
/// The access-token deny list, the ID-token replay cache and processed IdP event ids in one table of expiring markers:
/// PartitionKey = kind + first two characters of the key hash (spreads load), RowKey = base64url SHA-256 of the
/// key (jti or replay key), property ExpiresAt (UTC ticks), and on replay markers the WriteId of the insert that
/// stored it. One Table operation per check or insert.
/// </summary>
public sealed class TableTokenMarkerStore(TableProvisioner tables, TimeProvider time) : IAccessTokenDenyList, IIdTokenReplayCache, IProcessedEventStore, IExpiredStateCleaner
{
    private const string DenyKind = "deny";
    private const string ReplayKind = "replay";
    private const string EventKind = "event";
    private const string WriteIdProperty = "WriteId";

    /// <summary>An existence check needs no property: the row's keys alone make the answer smaller to send and to map.</summary>
    private static readonly string[] KeysOnly = ["PartitionKey"];

    private TableClient Markers => tables.TokenMarkers;

    private static (string Partition, string Row) Keys(string kind, string key)
    {
        var hash = TableKeys.Hash(key);
        return (kind + "-" + hash[..2], hash);
    }

    private static TableEntity Marker(string kind, string key, DateTimeOffset expiresAt)
    {
        var (pk, rk) = Keys(kind, key);
        return new TableEntity(pk, rk) { ["ExpiresAt"] = expiresAt.UtcTicks };
    }

    public async ValueTask DenyAsync(string jti, DateTimeOffset expiresAt, CancellationToken cancellationToken)
    {
        var marker = Marker(DenyKind, jti, expiresAt);
        await tables.RunAsync(Markers, async ct => await Markers.UpsertEntityAsync(marker, TableUpdateMode.Replace, ct), cancellationToken);
    }

    public ValueTask<bool> IsDeniedAsync(string jti, CancellationToken cancellationToken) => ExistsAsync(DenyKind, jti, cancellationToken);

    public ValueTask<bool> TryAddAsync(string key, DateTimeOffset expiresAt, CancellationToken cancellationToken) =>
        TryAddMarkerAsync(ReplayKind, key, expiresAt, cancellationToken);

    /// <summary>Insert-if-absent of a single-use marker of <paramref name="kind"/>: false when a live one exists (a replay).</summary>
    internal async ValueTask<bool> TryAddMarkerAsync(string kind, string key, DateTimeOffset expiresAt, CancellationToken cancellationToken)
    {
        // The write id tells our own insert, stored although its answer was lost and the pipeline's retry met it
        // (409), from somebody else's: only the latter is a replay.
        var marker = Marker(kind, key, expiresAt);
        var writeId = Convert.ToHexString(RandomNumberGenerator.GetBytes(12));
        marker[WriteIdProperty] = writeId;
        return await tables.RunAsync(Markers, async ct =>
        {
            if (await AddAsync(marker, ct))
            {
                return true;
            }

            // Present already: a replay, unless it is our own write or the marker outlived its token (cleanup not run yet).
            var existing = await GetIfExistsAsync(marker.PartitionKey, marker.RowKey, ct);
            if (existing is null)
            {
                return await AddAsync(marker, ct) || await IsOwnAsync(marker, writeId, ct);
            }

            if (existing.GetString(WriteIdProperty) == writeId)
            {
                return true;
            }

            if ((existing.GetInt64("ExpiresAt") ?? long.MaxValue) > time.GetUtcNow().UtcTicks)
            {
                return false;
            }

            try
            {
                await Markers.UpdateEntityAsync(marker, existing.ETag, TableUpdateMode.Replace, ct);
                return true;
            }
            catch (RequestFailedException ex) when (TableFaults.IsConflict(ex))
            {
                // Someone else renewed or removed the expired marker first (theirs is the one use), or our replace
                // was stored and its retry met it.
                return await IsOwnAsync(marker, writeId, ct);
            }
        }, cancellationToken);
    }

    public async ValueTask RemoveAsync(string key, CancellationToken cancellationToken)
    {
        var (pk, rk) = Keys(ReplayKind, key);
        await tables.RunAsync(Markers, async ct =>
        {
            // A missing row is no error for the SDK's delete (it returns the 404): removing twice is fine. A missing
            // table is told apart, so that it is re-created like on every other operation.
            var response = await Markers.DeleteEntityAsync(pk, rk, ETag.All, ct);
            TableFaults.ThrowIfTableNotFound(response);
        }, cancellationToken);
    }

    public ValueTask<bool> IsProcessedAsync(string key, CancellationToken cancellationToken) => ExistsAsync(EventKind, key, cancellationToken);

    public async ValueTask MarkProcessedAsync(string key, DateTimeOffset forgetAfter, CancellationToken cancellationToken)
    {
        var marker = Marker(EventKind, key, forgetAfter);
        await tables.RunAsync(Markers, async ct => await Markers.UpsertEntityAsync(marker, TableUpdateMode.Replace, ct), cancellationToken);
    }

    public async Task<int> PurgeExpiredAsync(DateTimeOffset now, CancellationToken cancellationToken)
    {
        var filter = TableClient.CreateQueryFilter($"ExpiresAt lt {now.UtcTicks}");
        return await tables.RunAsync(Markers, async ct => await TablePurge.DeleteMatchingAsync(Markers, filter, ct), cancellationToken);
    }

    private async ValueTask<bool> ExistsAsync(string kind, string key, CancellationToken cancellationToken)
    {
        var (pk, rk) = Keys(kind, key);
        return await tables.RunAsync(Markers, async ct => await GetIfExistsAsync(pk, rk, ct, KeysOnly) is not null, cancellationToken);
    }

    private async ValueTask<bool> IsOwnAsync(TableEntity marker, string writeId, CancellationToken cancellationToken) =>
        await GetIfExistsAsync(marker.PartitionKey, marker.RowKey, cancellationToken) is { } stored && stored.GetString(WriteIdProperty) == writeId;

    /// <summary>Point read; null when the row is absent, a <c>TableNotFound</c> fault when the table is.</summary>
    private async ValueTask<TableEntity?> GetIfExistsAsync(string partitionKey, string rowKey, CancellationToken cancellationToken, IEnumerable<string>? select = null)
    {
        var entity = await Markers.GetEntityIfExistsAsync<TableEntity>(partitionKey, rowKey, select, cancellationToken);
        if (!entity.HasValue)
        {
            TableFaults.ThrowIfTableNotFound(entity.GetRawResponse());
            return null;
        }

        return entity.Value;
    }

    /// <summary>Insert: false when the row exists (409).</summary>
    private async ValueTask<bool> AddAsync(TableEntity marker, CancellationToken cancellationToken)
    {
        try
        {
            await Markers.AddEntityAsync(marker, cancellationToken);
            return true;
        }
        catch (RequestFailedException ex) when (ex.Status == 409 && !TableFaults.IsTableGone(ex))
        {
            return false;
        }
    }
}
