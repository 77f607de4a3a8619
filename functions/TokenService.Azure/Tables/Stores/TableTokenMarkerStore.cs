using System.Globalization;
using TokenService.Events;
using TokenService.Idp;
using TokenService.Sessions;
using TokenService.Tokens;

namespace TokenService.Azure.Tables.Stores;

/// <summary>
/// The access-token deny list, the ID-token replay cache and processed IdP event ids in one table of expiring markers:
/// PartitionKey = kind + first two characters of the key hash (spreads load), RowKey = base64url SHA-256 of the
/// key (jti or replay key), property ExpiresAt (UTC ticks). One Table operation per check or insert.
/// </summary>
public sealed class TableTokenMarkerStore(TableProvisioner tables, TimeProvider time) : IAccessTokenDenyList, IIdTokenReplayCache, IProcessedEventStore, IExpiredStateCleaner
{
    private const string DenyKind = "deny";
    private const string ReplayKind = "replay";
    private const string EventKind = "event";

    private TableServiceClient Client => tables.Client;

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
        await tables.EnsureAsync(cancellationToken);
        await Client.UpsertAsync(TableNames.TokenMarkers, Marker(DenyKind, jti, expiresAt), TableUpdateMode.Replace, cancellationToken);
    }

    public async ValueTask<bool> IsDeniedAsync(string jti, CancellationToken cancellationToken)
    {
        await tables.EnsureAsync(cancellationToken);
        var (pk, rk) = Keys(DenyKind, jti);
        return await Client.GetEntityAsync(TableNames.TokenMarkers, pk, rk, cancellationToken) is not null;
    }

    public async ValueTask<bool> TryAddAsync(string key, DateTimeOffset expiresAt, CancellationToken cancellationToken)
    {
        await tables.EnsureAsync(cancellationToken);
        var marker = Marker(ReplayKind, key, expiresAt);
        var insert = await Client.InsertAsync(TableNames.TokenMarkers, marker, cancellationToken);
        if (insert.Succeeded)
        {
            return true;
        }

        // Present already: a replay, unless the marker outlived its token (cleanup not run yet).
        var existing = await Client.GetEntityAsync(TableNames.TokenMarkers, marker.PartitionKey, marker.RowKey, cancellationToken);
        if (existing is null)
        {
            return (await Client.InsertAsync(TableNames.TokenMarkers, marker, cancellationToken)).Succeeded;
        }

        if ((existing.GetInt64("ExpiresAt") ?? long.MaxValue) > time.GetUtcNow().UtcTicks)
        {
            return false;
        }

        return (await Client.UpdateAsync(TableNames.TokenMarkers, marker, existing.ETag!, TableUpdateMode.Replace, cancellationToken)).Succeeded;
    }

    public async ValueTask RemoveAsync(string key, CancellationToken cancellationToken)
    {
        await tables.EnsureAsync(cancellationToken);
        var (pk, rk) = Keys(ReplayKind, key);
        await Client.DeleteAsync(TableNames.TokenMarkers, pk, rk, "*", cancellationToken);
    }

    public async ValueTask<bool> IsProcessedAsync(string key, CancellationToken cancellationToken)
    {
        await tables.EnsureAsync(cancellationToken);
        var (pk, rk) = Keys(EventKind, key);
        return await Client.GetEntityAsync(TableNames.TokenMarkers, pk, rk, cancellationToken) is not null;
    }

    public async ValueTask MarkProcessedAsync(string key, DateTimeOffset forgetAfter, CancellationToken cancellationToken)
    {
        await tables.EnsureAsync(cancellationToken);
        await Client.UpsertAsync(TableNames.TokenMarkers, Marker(EventKind, key, forgetAfter), TableUpdateMode.Replace, cancellationToken);
    }

    public async Task<int> PurgeExpiredAsync(DateTimeOffset now, CancellationToken cancellationToken)
    {
        await tables.EnsureAsync(cancellationToken);
        var filter = "ExpiresAt lt " + now.UtcTicks.ToString(CultureInfo.InvariantCulture) + "L";
        return await TablePurge.DeleteMatchingAsync(Client, TableNames.TokenMarkers, filter, cancellationToken);
    }
}
