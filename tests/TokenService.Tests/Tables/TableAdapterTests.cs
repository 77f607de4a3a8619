using System.Text;
using Azure;
using Azure.Core;
using Azure.Core.Pipeline;
using Azure.Data.Tables;
using TokenService.Azure.Tables;
using TokenService.Azure.Tables.Stores;
using TokenService.Configuration;
using TokenService.Sessions;

namespace TokenService.Tests.Tables;

/// <summary>
/// What remains of the Table adapter on Azure.Data.Tables: the product's entities through the SDK on Azurite
/// (types included), the mapping of the service's answers to store results and to fail-closed outages, and the
/// client configuration.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class TableAdapterTests(AzuriteFixture azurite)
{
    /// <summary>Keeps the JSON bodies the client sends, to check what goes on the wire.</summary>
    private sealed class BodyRecorder : HttpPipelineSynchronousPolicy
    {
        public List<string> Bodies { get; } = [];

        public override void OnSendingRequest(HttpMessage message)
        {
            if (message.Request.Content is { } content)
            {
                using var buffer = new MemoryStream();
                content.WriteTo(buffer, default);
                lock (Bodies)
                {
                    Bodies.Add(Encoding.UTF8.GetString(buffer.ToArray()));
                }
            }
        }
    }

    private static readonly DateTimeOffset When = new(2026, 11, 23, 5, 6, 7, 891, TimeSpan.Zero);

    private async Task<TableClient> NewTableAsync(TableClientOptions? options = null)
    {
        var table = azurite.CreateClient(options).GetTableClient("t" + Guid.NewGuid().ToString("N")[..20]);
        await table.CreateIfNotExistsAsync();
        return table;
    }

    private static SessionRecord FullSession(string user) => new()
    {
        SessionId = SessionIds.NewSessionId(user),
        UserId = user,
        Subject = "sub-" + user,
        ClientId = "web",
        Scope = "openid api.read",
        Audiences = ["api://x", "api://y"],
        CreatedAt = When,
        LastActivityAt = When.AddMinutes(1),
        IdleExpiresAt = When.AddHours(1),
        AbsoluteExpiresAt = When.AddDays(1),
        AuthTime = When.AddMinutes(-1).AddTicks(3),
        Acr = "urn:mfa",
        Amr = ["pwd", "otp"],
        RefreshTokenHash = "hash-current",
        RefreshTokenExpiresAt = When.AddHours(12),
        PreviousRefreshTokenHash = "hash-previous",
        PreviousRotatedAt = When.AddSeconds(30),
        RetiredRefreshTokenHashes = ["old-1", "it's \"quoted\" ü"],
        Generation = 9_007_199_254_740_993L, // beyond a double's exact integers: must travel as Edm.Int64
        WriteId = "write-1",
        RevokedAt = When.AddHours(2),
        RevocationReason = "logout",
        PurgeAt = When.AddDays(1).AddMinutes(15),
    };

    private static void AssertSameSession(SessionRecord expected, SessionRecord actual)
    {
        Assert.Equal(expected with { ETag = actual.ETag, Audiences = actual.Audiences, Amr = actual.Amr, RetiredRefreshTokenHashes = actual.RetiredRefreshTokenHashes }, actual);
        Assert.Equal(expected.Audiences, actual.Audiences);
        Assert.Equal(expected.Amr, actual.Amr);
        Assert.Equal(expected.RetiredRefreshTokenHashes, actual.RetiredRefreshTokenHashes);
    }

    [Fact]
    public async Task A_session_entity_round_trips_with_every_field_typed()
    {
        var recorder = new BodyRecorder();
        var options = TableStorage.DefaultOptions();
        options.AddPolicy(recorder, HttpPipelinePosition.PerCall);
        var table = await NewTableAsync(options);
        var full = FullSession("full-" + Guid.NewGuid().ToString("N"));
        var sparse = FullSession("sparse-" + Guid.NewGuid().ToString("N")) with
        {
            AuthTime = null, Acr = null, PreviousRefreshTokenHash = null, PreviousRotatedAt = null, RevokedAt = null, RevocationReason = null,
            Audiences = [], Amr = [], RetiredRefreshTokenHashes = [],
        };

        foreach (var session in new[] { full, sparse })
        {
            await table.AddEntityAsync(SessionEntityMapper.ToEntity(session));
            var stored = (await table.GetEntityIfExistsAsync<TableEntity>(SessionIds.PartitionKeyOf(session.SessionId)!, session.SessionId)).Value!;
            var read = SessionEntityMapper.FromEntity(stored);
            Assert.False(string.IsNullOrEmpty(read.ETag));
            AssertSameSession(session, read);

            // Times and the generation come back as Int64, not as Int32 or Double.
            Assert.IsType<long>(stored["CreatedAt"]);
            Assert.IsType<long>(stored["PurgeAt"]);
            Assert.IsType<long>(stored["Generation"]);
        }

        // Absent optional values are left out, not stored as nulls.
        var sparseRow = (await table.GetEntityIfExistsAsync<TableEntity>(SessionIds.PartitionKeyOf(sparse.SessionId)!, sparse.SessionId)).Value!;
        Assert.False(sparseRow.ContainsKey("RevokedAt"));
        Assert.False(sparseRow.ContainsKey("Acr"));

        var body = Assert.Single(recorder.Bodies, b => b.Contains(full.SessionId, StringComparison.Ordinal));
        Assert.Contains("\"Generation@odata.type\":\"Edm.Int64\"", body, StringComparison.Ordinal);
        Assert.Contains("\"Generation\":\"9007199254740993\"", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Doubles_are_written_as_Edm_Double_and_read_back_as_doubles()
    {
        // The hand-written client wrote doubles as bare JSON numbers: 2.0 went out as 2 and came back an Int32.
        var recorder = new BodyRecorder();
        var options = TableStorage.DefaultOptions();
        options.AddPolicy(recorder, HttpPipelinePosition.PerCall);
        var table = await NewTableAsync(options);
        await table.AddEntityAsync(new TableEntity("p", "r") { ["Whole"] = 2.0, ["Ratio"] = 0.25, ["Small"] = 42, ["When"] = When, ["Id"] = Guid.Empty, ["Bytes"] = new byte[] { 0, 255 } });

        Assert.Contains(recorder.Bodies, b => b.Contains("\"Whole@odata.type\":\"Edm.Double\"", StringComparison.Ordinal));
        var read = (await table.GetEntityAsync<TableEntity>("p", "r")).Value;
        Assert.Equal(2.0, Assert.IsType<double>(read["Whole"]));
        Assert.Equal(0.25, Assert.IsType<double>(read["Ratio"]));
        Assert.Equal(42, Assert.IsType<int>(read["Small"]));
        Assert.Equal(When, read.GetDateTimeOffset("When"));
        Assert.Equal(Guid.Empty, read.GetGuid("Id"));
        Assert.Equal(new byte[] { 0, 255 }, read.GetBinary("Bytes"));
    }

    [Fact]
    public async Task Failed_transactions_report_409_412_and_404_as_conflicts_and_apply_nothing()
    {
        var table = await NewTableAsync();
        await table.AddEntityAsync(new TableEntity("p", "existing") { ["V"] = 1 });
        var existing = (await table.GetEntityAsync<TableEntity>("p", "existing")).Value;
        var stale = new ETag("W/\"datetime'2000-01-01T00%3A00%3A00.0000000Z'\"");

        async Task<int> FailingStatusAsync(params TableTransactionAction[] actions)
        {
            var ex = await Assert.ThrowsAsync<TableTransactionFailedException>(() => table.SubmitTransactionAsync(actions));
            Assert.True(TableFaults.IsConflict(ex), $"status {ex.Status}");
            return ex.Status;
        }

        Assert.Equal(409, await FailingStatusAsync(
            new(TableTransactionActionType.Add, new TableEntity("p", "new-1")),
            new(TableTransactionActionType.Add, new TableEntity("p", "existing"))));
        Assert.Equal(412, await FailingStatusAsync(
            new(TableTransactionActionType.Add, new TableEntity("p", "new-1")),
            new(TableTransactionActionType.UpdateReplace, new TableEntity("p", "existing") { ["V"] = 2 }, stale)));
        Assert.Equal(404, await FailingStatusAsync(
            new(TableTransactionActionType.Add, new TableEntity("p", "new-1")),
            new(TableTransactionActionType.UpdateReplace, new TableEntity("p", "gone") { ["V"] = 2 }, ETag.All)));

        Assert.False((await table.GetEntityIfExistsAsync<TableEntity>("p", "new-1")).HasValue);
        Assert.Equal(1, (await table.GetEntityAsync<TableEntity>("p", "existing")).Value.GetInt32("V"));

        await table.SubmitTransactionAsync([
            new(TableTransactionActionType.Add, new TableEntity("p", "new-1")),
            new(TableTransactionActionType.UpdateReplace, new TableEntity("p", "existing") { ["V"] = 3 }, existing.ETag),
        ]);
        Assert.Equal(3, (await table.GetEntityAsync<TableEntity>("p", "existing")).Value.GetInt32("V"));
    }

    [Fact]
    public async Task The_session_store_maps_conflicts_to_store_results()
    {
        var store = new TableSessionStore(new TableProvisioner(azurite.CreateClient()));
        var user = "conflict-" + Guid.NewGuid().ToString("N");
        var session = FullSession(user) with { RevokedAt = null, RevocationReason = null };
        Assert.Equal(StoreWriteStatus.Success, await store.CommitAsync(new UserSessionsChange(user, null, [session], []), default));

        // 409: the user row exists although the caller saw none.
        Assert.Equal(StoreWriteStatus.Conflict, await store.CommitAsync(new UserSessionsChange(user, null, [FullSession(user)], []), default));

        var snapshot = await store.GetUserSessionsAsync(user, default);
        var stored = Assert.Single(snapshot.Sessions);
        var replaced = await store.ReplaceSessionAsync(stored with { WriteId = "write-2" }, default);
        Assert.Equal(StoreWriteStatus.Success, replaced.Status);

        // 412 on a single replace, and on the transaction's update of the row that moved meanwhile.
        Assert.Equal(StoreWriteStatus.Conflict, (await store.ReplaceSessionAsync(stored with { WriteId = "write-3" }, default)).Status);
        Assert.Equal(StoreWriteStatus.Conflict, await store.CommitAsync(new UserSessionsChange(user, snapshot.Version, [], [stored with { RevokedAt = When }]), default));
        Assert.Equal("write-2", (await store.GetSessionAsync(session.SessionId, default))!.WriteId);

        // 404: the row is gone (purged).
        Assert.True(await store.PurgeExpiredAsync(DateTimeOffset.MaxValue, default) >= 1);
        Assert.Equal(StoreWriteStatus.NotFound, (await store.ReplaceSessionAsync(replaced.Record!, default)).Status);
        Assert.Equal(StoreWriteStatus.Conflict, await store.CommitAsync(new UserSessionsChange(user, snapshot.Version, [], [replaced.Record!]), default));
    }

    [Fact]
    public async Task A_rejected_identity_is_an_outage_not_an_error()
    {
        // Azurite checks Shared Key signatures: a wrong key is the 403 a misconfigured deployment gets.
        var wrongKey = azurite.ConnectionString.Replace("AccountKey=", "AccountKey=AAAA", StringComparison.Ordinal);
        var store = new TableSessionStore(new TableProvisioner(new TableServiceClient(wrongKey, TableStorage.DefaultOptions())));
        var error = await Assert.ThrowsAsync<DependencyUnavailableException>(async () => await store.GetSessionAsync(SessionIds.NewSessionId("u"), default));
        Assert.Equal("storage", error.Dependency);
        Assert.Equal(403, Assert.IsType<RequestFailedException>(error.InnerException).Status);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(401)]
    [InlineData(403)]
    [InlineData(408)]
    [InlineData(429)]
    [InlineData(500)]
    [InlineData(502)]
    [InlineData(503)]
    [InlineData(504)]
    [InlineData(400)]
    [InlineData(404)]
    [InlineData(409)]
    [InlineData(412)]
    public void Every_service_answer_a_store_did_not_handle_is_an_outage_and_only_404_409_412_are_conflicts(int status)
    {
        // The stores turn the conflicts they expect into results first; whatever answer still reaches AsUnavailable
        // is a storage fault (503), never a 500.
        var mapped = TableFaults.AsUnavailable(new RequestFailedException(status, "injected", "SomeCode", null), default);
        Assert.NotNull(mapped);
        Assert.Contains(status == 0 ? "unreachable" : $"{status} (SomeCode)", mapped.Message, StringComparison.Ordinal);
        Assert.Equal(status is 404 or 409 or 412, TableFaults.IsConflict(new RequestFailedException(status, "injected")));
    }

    [Fact]
    public void A_missing_table_is_no_conflict_about_a_row()
    {
        Assert.False(TableFaults.IsConflict(new RequestFailedException(404, "gone", "TableNotFound", null)));
        Assert.False(TableFaults.IsConflict(new RequestFailedException(409, "gone", "TableBeingDeleted", null)));
        Assert.True(TableFaults.IsConflict(new RequestFailedException(404, "no row", "ResourceNotFound", null)));
        Assert.True(TableFaults.IsTableGone(new RequestFailedException(404, "gone", "TableNotFound", null)));
        Assert.False(TableFaults.IsTableGone(new RequestFailedException(404, "no row", "ResourceNotFound", null)));
    }

    [Fact]
    public void Timeouts_and_exhausted_retries_are_outages_but_the_callers_cancellation_is_not()
    {
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        Assert.NotNull(TableFaults.AsUnavailable(new TaskCanceledException("network timeout"), default));
        Assert.NotNull(TableFaults.AsUnavailable(new AggregateException(new TaskCanceledException(), new TaskCanceledException()), default));
        Assert.Null(TableFaults.AsUnavailable(new OperationCanceledException(cancelled.Token), cancelled.Token));
        Assert.Null(TableFaults.AsUnavailable(new InvalidOperationException(), default));
    }

    [Fact]
    public void Connection_strings_and_service_uris_configure_the_sdk_client()
    {
        var asked = 0;
        TokenCredential Credential()
        {
            asked++;
            return new FixedCredential();
        }

        var dev = TableStorage.CreateClient(new StorageOptions { TableConnectionString = "UseDevelopmentStorage=true" }, Credential);
        Assert.Equal(new Uri("http://127.0.0.1:10002/devstoreaccount1"), dev.Uri);
        Assert.Equal("devstoreaccount1", dev.AccountName);

        var account = TableStorage.CreateClient(new StorageOptions { TableConnectionString = "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey=AAAA;EndpointSuffix=core.windows.net" }, Credential);
        Assert.Equal("acme", account.AccountName);
        Assert.Equal("acme.table.core.windows.net", account.Uri.Host);
        Assert.Equal(0, asked);

        var managed = TableStorage.CreateClient(new StorageOptions { TableServiceUri = "https://acme.table.core.windows.net/" }, Credential);
        Assert.Equal("acme.table.core.windows.net", managed.Uri.Host);
        Assert.Equal(1, asked);

        var error = Assert.Throws<FormatException>(() => TableStorage.CreateClient(new StorageOptions { TableConnectionString = "AccountName=acme;secret-key-material" }, Credential));
        Assert.DoesNotContain("secret-key-material", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Keys_helpers_keep_keys_legal()
    {
        Assert.True(TableKeys.IsValidKey("o'brien ü+%=&(x)"));
        Assert.False(TableKeys.IsValidKey("a/b"));
        Assert.False(TableKeys.IsValidKey("a#b"));
        Assert.Matches("^[A-Za-z0-9_-]{43}$", TableKeys.Hash("any/thing#?\\"));
    }

    private sealed class FixedCredential : TokenCredential
    {
        public override AccessToken GetToken(TokenRequestContext requestContext, CancellationToken cancellationToken) => new("token", DateTimeOffset.MaxValue);

        public override ValueTask<AccessToken> GetTokenAsync(TokenRequestContext requestContext, CancellationToken cancellationToken) => new(GetToken(requestContext, cancellationToken));
    }
}
