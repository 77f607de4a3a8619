using Azure;
using Azure.Data.Tables;

namespace TokenService.Azure.Tables.Stores;

/// <summary>
/// Batched cleanup: deletes the rows a filter matches, per partition in transactions of up to 100, each delete
/// conditional on the ETag the query saw, so a row that changed since (a live row) is never deleted.
/// </summary>
internal static class TablePurge
{
    private static readonly string[] KeysOnly = ["PartitionKey", "RowKey"];

    public static async Task<int> DeleteMatchingAsync(TableClient table, string filter, CancellationToken cancellationToken)
    {
        // Only the keys (and the ETag, which every entity carries) are needed to delete.
        var expired = new List<TableEntity>();
        await foreach (var entity in table.QueryAsync<TableEntity>(filter, maxPerPage: 1000, select: KeysOnly, cancellationToken: cancellationToken))
        {
            expired.Add(entity);
        }

        var deleted = 0;
        foreach (var group in expired.GroupBy(e => e.PartitionKey, StringComparer.Ordinal))
        {
            foreach (var chunk in group.Chunk(100))
            {
                try
                {
                    await table.SubmitTransactionAsync(chunk.Select(e => new TableTransactionAction(TableTransactionActionType.Delete, e, IfMatch(e))), cancellationToken);
                    deleted += chunk.Length;
                    continue;
                }
                catch (TableTransactionFailedException ex) when (TableFaults.IsConflict(ex))
                {
                    // One row changed or vanished meanwhile: delete the others one by one below, each still conditional.
                }

                foreach (var entity in chunk)
                {
                    try
                    {
                        // The SDK answers a missing row with its 404 response instead of an exception; a missing table
                        // is a fault (TableProvisioner.RunAsync re-creates it and runs the purge again).
                        var response = await table.DeleteEntityAsync(entity.PartitionKey, entity.RowKey, IfMatch(entity), cancellationToken);
                        TableFaults.ThrowIfTableNotFound(response);
                        if (response.Status == 204)
                        {
                            deleted++;
                        }
                    }
                    catch (RequestFailedException ex) when (TableFaults.IsConflict(ex))
                    {
                        // Changed since the query: alive again, keep it.
                    }
                }
            }
        }

        return deleted;
    }

    private static ETag IfMatch(TableEntity entity) => entity.ETag == default ? ETag.All : entity.ETag;
}
