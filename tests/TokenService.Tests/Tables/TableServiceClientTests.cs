using System.Text;
using TokenService.Azure.Tables;

namespace TokenService.Tests.Tables;

[Collection(AzuriteCollection.Name)]
public sealed class TableServiceClientTests(AzuriteFixture azurite)
{
    private readonly TableServiceClient _client = azurite.CreateClient();

    private async Task<string> NewTableAsync()
    {
        var table = "t" + Guid.NewGuid().ToString("N")[..20];
        await _client.CreateTableIfNotExistsAsync(table, default);
        await _client.CreateTableIfNotExistsAsync(table, default); // idempotent
        return table;
    }

    [Fact]
    public async Task Typed_properties_round_trip_through_insert_and_point_get()
    {
        var table = await NewTableAsync();
        var when = new DateTimeOffset(2026, 11, 23, 5, 6, 7, 891, TimeSpan.Zero);
        var entity = new TableEntity("p", "r")
        {
            ["Text"] = "it's \"quoted\" ü",
            ["Flag"] = true,
            ["Small"] = 42,
            ["Big"] = 9_007_199_254_740_993L,
            ["Ratio"] = 0.25,
            ["When"] = when,
            ["Id"] = Guid.Parse("6f9619ff-8b86-d011-b42d-00c04fc964ff"),
            ["Bytes"] = new byte[] { 0, 1, 2, 255 },
        };
        var insert = await _client.InsertAsync(table, entity, default);
        Assert.True(insert.Succeeded);

        var read = await _client.GetEntityAsync(table, "p", "r", default);
        Assert.NotNull(read);
        Assert.False(string.IsNullOrEmpty(read!.ETag));
        Assert.Equal("it's \"quoted\" ü", read.GetString("Text"));
        Assert.True(read.GetBoolean("Flag"));
        Assert.Equal(42, read.GetInt32("Small"));
        Assert.Equal(9_007_199_254_740_993L, read.GetInt64("Big"));
        Assert.Equal(0.25, read.GetDouble("Ratio"));
        Assert.Equal(when, read.GetDateTimeOffset("When"));
        Assert.Equal(Guid.Parse("6f9619ff-8b86-d011-b42d-00c04fc964ff"), read.GetGuid("Id"));
        Assert.Equal(new byte[] { 0, 1, 2, 255 }, read.GetBinary("Bytes"));
        Assert.Null(await _client.GetEntityAsync(table, "p", "missing", default));
    }

    [Fact]
    public async Task Insert_of_an_existing_row_is_a_conflict_result()
    {
        var table = await NewTableAsync();
        Assert.True((await _client.InsertAsync(table, new TableEntity("p", "r"), default)).Succeeded);
        Assert.Equal(TableWriteStatus.Conflict, (await _client.InsertAsync(table, new TableEntity("p", "r"), default)).Status);
    }

    [Fact]
    public async Task Conditional_update_and_delete_honour_if_match()
    {
        var table = await NewTableAsync();
        await _client.InsertAsync(table, new TableEntity("p", "r") { ["V"] = 1 }, default);
        var v1 = (await _client.GetEntityAsync(table, "p", "r", default))!;

        var update = await _client.UpdateAsync(table, new TableEntity("p", "r") { ["V"] = 2 }, v1.ETag!, TableUpdateMode.Replace, default);
        Assert.True(update.Succeeded);
        Assert.NotEqual(v1.ETag, update.ETag);

        var stale = await _client.UpdateAsync(table, new TableEntity("p", "r") { ["V"] = 3 }, v1.ETag!, TableUpdateMode.Replace, default);
        Assert.Equal(TableWriteStatus.Conflict, stale.Status);
        Assert.Equal(2, (await _client.GetEntityAsync(table, "p", "r", default))!.GetInt32("V"));

        var merge = await _client.UpdateAsync(table, new TableEntity("p", "r") { ["W"] = "x" }, update.ETag!, TableUpdateMode.Merge, default);
        Assert.True(merge.Succeeded);
        var merged = (await _client.GetEntityAsync(table, "p", "r", default))!;
        Assert.Equal(2, merged.GetInt32("V"));
        Assert.Equal("x", merged.GetString("W"));

        Assert.Equal(TableWriteStatus.Conflict, (await _client.DeleteAsync(table, "p", "r", v1.ETag!, default)).Status);
        Assert.True((await _client.DeleteAsync(table, "p", "r", merged.ETag!, default)).Succeeded);
        Assert.Equal(TableWriteStatus.NotFound, (await _client.DeleteAsync(table, "p", "r", "*", default)).Status);
        Assert.Equal(TableWriteStatus.NotFound, (await _client.UpdateAsync(table, new TableEntity("p", "r"), "*", TableUpdateMode.Replace, default)).Status);
    }

    [Fact]
    public async Task Upsert_inserts_then_replaces_without_a_condition()
    {
        var table = await NewTableAsync();
        Assert.True((await _client.UpsertAsync(table, new TableEntity("p", "r") { ["V"] = 1 }, TableUpdateMode.Replace, default)).Succeeded);
        Assert.True((await _client.UpsertAsync(table, new TableEntity("p", "r") { ["V"] = 2 }, TableUpdateMode.Replace, default)).Succeeded);
        Assert.Equal(2, (await _client.GetEntityAsync(table, "p", "r", default))!.GetInt32("V"));
    }

    [Fact]
    public async Task Queries_filter_select_and_follow_continuation_tokens()
    {
        var table = await NewTableAsync();
        for (var i = 0; i < 25; i++)
        {
            await _client.InsertAsync(table, new TableEntity(i % 2 == 0 ? "even" : "odd", i.ToString("D3", System.Globalization.CultureInfo.InvariantCulture)) { ["N"] = (long)i, ["Name"] = "o'neil" }, default);
        }

        var firstPage = await _client.QueryPageAsync(table, "PartitionKey eq 'even'", null, 5, null, null, default);
        Assert.Equal(5, firstPage.Entities.Count);
        Assert.True(firstPage.HasMore);

        var all = new List<TableEntity>();
        await foreach (var e in _client.QueryAsync(table, "PartitionKey eq 'even' and N ge 10L", ["N"], pageSize: 2))
        {
            all.Add(e);
        }

        Assert.Equal([10L, 12L, 14L, 16L, 18L, 20L, 22L, 24L], all.Select(e => e.GetInt64("N")!.Value).ToArray());
        Assert.All(all, e => Assert.Null(e.GetString("Name")));
        Assert.All(all, e => Assert.False(string.IsNullOrEmpty(e.ETag)));

        var quoted = new List<TableEntity>();
        await foreach (var e in _client.QueryAsync(table, "Name eq " + TableKeys.Literal("o'neil") + " and PartitionKey eq 'odd'"))
        {
            quoted.Add(e);
        }

        Assert.Equal(12, quoted.Count);
    }

    [Fact]
    public async Task A_batch_is_atomic_and_reports_the_failed_operation()
    {
        var table = await NewTableAsync();
        await _client.InsertAsync(table, new TableEntity("p", "existing") { ["V"] = 1 }, default);
        var existing = (await _client.GetEntityAsync(table, "p", "existing", default))!;

        var failing = await _client.SubmitBatchAsync(table,
        [
            new(TableBatchOperationKind.Insert, new TableEntity("p", "new-1")),
            new(TableBatchOperationKind.Replace, new TableEntity("p", "existing") { ["V"] = 2 }, "W/\"datetime'2000-01-01T00%3A00%3A00.0000000Z'\""),
            new(TableBatchOperationKind.Insert, new TableEntity("p", "new-2")),
        ], default);
        Assert.False(failing.Succeeded);
        Assert.True(failing.IsConflict, $"status {failing.FailedStatus}");
        Assert.Null(await _client.GetEntityAsync(table, "p", "new-1", default));
        Assert.Equal(1, (await _client.GetEntityAsync(table, "p", "existing", default))!.GetInt32("V"));

        var ok = await _client.SubmitBatchAsync(table,
        [
            new(TableBatchOperationKind.Insert, new TableEntity("p", "new-1")),
            new(TableBatchOperationKind.Replace, new TableEntity("p", "existing") { ["V"] = 3 }, existing.ETag),
            new(TableBatchOperationKind.Delete, new TableEntity("p", "new-1x"), "*"),
        ], default);
        Assert.False(ok.Succeeded, "deleting a missing row fails the batch");
        Assert.Equal(404, ok.FailedStatus);

        var good = await _client.SubmitBatchAsync(table,
        [
            new(TableBatchOperationKind.Insert, new TableEntity("p", "new-1")),
            new(TableBatchOperationKind.Replace, new TableEntity("p", "existing") { ["V"] = 3 }, existing.ETag),
        ], default);
        Assert.True(good.Succeeded);
        Assert.NotNull(await _client.GetEntityAsync(table, "p", "new-1", default));
        Assert.Equal(3, (await _client.GetEntityAsync(table, "p", "existing", default))!.GetInt32("V"));
    }

    [Fact]
    public async Task Keys_with_quotes_and_unicode_round_trip()
    {
        var table = await NewTableAsync();
        var key = "o'brien ü+%=&(x)";
        Assert.True(TableKeys.IsValidKey(key));
        Assert.False(TableKeys.IsValidKey("a/b"));
        Assert.False(TableKeys.IsValidKey("a#b"));
        await _client.InsertAsync(table, new TableEntity(key, key), default);
        Assert.NotNull(await _client.GetEntityAsync(table, key, key, default));
        Assert.Matches("^[A-Za-z0-9_-]{43}$", TableKeys.Hash("any/thing#?\\"));
    }

    [Fact]
    public void Shared_key_signature_follows_the_documented_string_to_sign()
    {
        // StringToSign = VERB\nContent-MD5\nContent-Type\nDate\nCanonicalizedResource (Table service Shared Key).
        var key = Convert.FromBase64String("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==");
        var policy = new TableSharedKeyPolicy("devstoreaccount1", key);
        Assert.Equal("/devstoreaccount1/devstoreaccount1/Tables", policy.CanonicalizedResource(new Uri("http://127.0.0.1:10002/devstoreaccount1/Tables")));
        Assert.Equal("/devstoreaccount1/mytable()?comp=metadata", policy.CanonicalizedResource(new Uri("https://myaccount.table.core.windows.net/mytable()?comp=metadata&$top=1")));
        var stringToSign = "GET\n\n\nMon, 23 Nov 2026 05:00:00 GMT\n/devstoreaccount1/devstoreaccount1/Tables";
        var expected = Convert.ToBase64String(System.Security.Cryptography.HMACSHA256.HashData(key, Encoding.UTF8.GetBytes(stringToSign)));
        Assert.Equal(expected, policy.Sign(stringToSign));
    }

    [Fact]
    public void Connection_strings_parse_for_azurite_and_accounts()
    {
        var dev = TableConnection.Parse("UseDevelopmentStorage=true");
        Assert.Equal(new Uri("http://127.0.0.1:10002/devstoreaccount1"), dev.Endpoint);
        var account = TableConnection.Parse("DefaultEndpointsProtocol=https;AccountName=acme;AccountKey=AAAA;EndpointSuffix=core.windows.net");
        Assert.Equal(new Uri("https://acme.table.core.windows.net"), account.Endpoint);
        var error = Assert.Throws<FormatException>(() => TableConnection.Parse("AccountName=acme;AccountKey=not base64!"));
        Assert.DoesNotContain("not base64!", error.Message, StringComparison.Ordinal);
    }
}
