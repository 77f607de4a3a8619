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
        try
        {
            await tables.EnsureAsync(cancellationToken);
            await Markers.UpsertEntityAsync(Marker(DenyKind, jti, expiresAt), TableUpdateMode.Replace, cancellationToken);
        }
        catch (Exception ex) when (TableFaults.AsUnavailable(ex, cancellationToken) is { } unavailable)
        {
            throw unavailable;
        }
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
        try
        {
            await tables.EnsureAsync(cancellationToken);
            if (await AddAsync(marker, cancellationToken))
            {
                return true;
            }

            // Present already: a replay, unless it is our own write or the marker outlived its token (cleanup not run yet).
            var existing = await Markers.GetEntityIfExistsAsync<TableEntity>(marker.PartitionKey, marker.RowKey, cancellationToken: cancellationToken);
            if (!existing.HasValue)
            {
                return await AddAsync(marker, cancellationToken) || await IsOwnAsync(marker, writeId, cancellationToken);
            }

            var stored = existing.Value!;
            if (stored.GetString(WriteIdProperty) == writeId)
            {
                return true;
            }

            if ((stored.GetInt64("ExpiresAt") ?? long.MaxValue) > time.GetUtcNow().UtcTicks)
            {
                return false;
            }

            try
            {
                await Markers.UpdateEntityAsync(marker, stored.ETag, TableUpdateMode.Replace, cancellationToken);
                return true;
            }
            catch (RequestFailedException ex) when (TableFaults.IsConflict(ex))
            {
                // Someone else renewed or removed the expired marker first (theirs is the one use), or our replace
                // was stored and its retry met it.
                return await IsOwnAsync(marker, writeId, cancellationToken);
            }
        }
        catch (Exception ex) when (TableFaults.AsUnavailable(ex, cancellationToken) is { } unavailable)
        {
            throw unavailable;
        }
    }

    public async ValueTask RemoveAsync(string key, CancellationToken cancellationToken)
    {
        var (pk, rk) = Keys(ReplayKind, key);
        try
        {
            await tables.EnsureAsync(cancellationToken);

            // A missing row is no error for the SDK's delete: removing twice is fine.
            await Markers.DeleteEntityAsync(pk, rk, ETag.All, cancellationToken);
        }
        catch (Exception ex) when (TableFaults.AsUnavailable(ex, cancellationToken) is { } unavailable)
        {
            throw unavailable;
        }
    }

    public ValueTask<bool> IsProcessedAsync(string key, CancellationToken cancellationToken) => ExistsAsync(EventKind, key, cancellationToken);

    public async ValueTask MarkProcessedAsync(string key, DateTimeOffset forgetAfter, CancellationToken cancellationToken)
    {
        try
        {
            await tables.EnsureAsync(cancellationToken);
            await Markers.UpsertEntityAsync(Marker(EventKind, key, forgetAfter), TableUpdateMode.Replace, cancellationToken);
        }
        catch (Exception ex) when (TableFaults.AsUnavailable(ex, cancellationToken) is { } unavailable)
        {
            throw unavailable;
        }
    }

    public async Task<int> PurgeExpiredAsync(DateTimeOffset now, CancellationToken cancellationToken)
    {
        try
        {
            await tables.EnsureAsync(cancellationToken);
            return await TablePurge.DeleteMatchingAsync(Markers, TableClient.CreateQueryFilter($"ExpiresAt lt {now.UtcTicks}"), cancellationToken);
        }
        catch (Exception ex) when (TableFaults.AsUnavailable(ex, cancellationToken) is { } unavailable)
        {
            throw unavailable;
        }
    }

    private async ValueTask<bool> ExistsAsync(string kind, string key, CancellationToken cancellationToken)
    {
        var (pk, rk) = Keys(kind, key);
        try
        {
            await tables.EnsureAsync(cancellationToken);
            var marker = await Markers.GetEntityIfExistsAsync<TableEntity>(pk, rk, cancellationToken: cancellationToken);
            return marker.HasValue;
        }
        catch (Exception ex) when (TableFaults.AsUnavailable(ex, cancellationToken) is { } unavailable)
        {
            throw unavailable;
        }
    }

    private async ValueTask<bool> IsOwnAsync(TableEntity marker, string writeId, CancellationToken cancellationToken)
    {
        var stored = await Markers.GetEntityIfExistsAsync<TableEntity>(marker.PartitionKey, marker.RowKey, cancellationToken: cancellationToken);
        return stored.HasValue && stored.Value!.GetString(WriteIdProperty) == writeId;
    }

    /// <summary>Insert: false when the row exists (409).</summary>
    private async ValueTask<bool> AddAsync(TableEntity marker, CancellationToken cancellationToken)
    {
        try
        {
            await Markers.AddEntityAsync(marker, cancellationToken);
            return true;
        }
        catch (RequestFailedException ex) when (ex.Status == 409)
        {
            return false;
        }
    }
}
