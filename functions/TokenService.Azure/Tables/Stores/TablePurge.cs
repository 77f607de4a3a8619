namespace TokenService.Azure.Tables.Stores;

/// <summary>
/// Batched cleanup: deletes the rows a filter matches, per partition in transactions of up to 100, each delete
/// conditional on the ETag the query saw, so a row that changed since (a live row) is never deleted.
/// </summary>
internal static class TablePurge
{
    public static async Task<int> DeleteMatchingAsync(TableServiceClient client, string table, string filter, CancellationToken cancellationToken)
    {
        var expired = new List<TableEntity>();
        await foreach (var entity in client.QueryAsync(table, filter, ["PartitionKey", "RowKey"], pageSize: 1000, cancellationToken))
        {
            expired.Add(entity);
        }

        var deleted = 0;
        foreach (var group in expired.GroupBy(e => e.PartitionKey, StringComparer.Ordinal))
        {
            foreach (var chunk in group.Chunk(100))
            {
                var batch = await client.SubmitBatchAsync(table, chunk.Select(e => new TableBatchOperation(TableBatchOperationKind.Delete, e, e.ETag ?? "*")).ToList(), cancellationToken);
                if (batch.Succeeded)
                {
                    deleted += chunk.Length;
                    continue;
                }

                // One row changed or vanished meanwhile: delete the others one by one, each still conditional.
                foreach (var entity in chunk)
                {
                    if ((await client.DeleteAsync(table, entity.PartitionKey, entity.RowKey, entity.ETag ?? "*", cancellationToken)).Succeeded)
                    {
                        deleted++;
                    }
                }
            }
        }

        return deleted;
    }
}
