using System.Net;
using Azure.Core;
using Azure.Core.Pipeline;
using Azure.Data.Tables;
using TokenService.Azure.Tables;
using TokenService.Azure.Tables.Stores;
using TokenService.Sessions;
using TokenService.Tests.Infrastructure;
using static TokenService.Tests.Infrastructure.TokenServiceTestHost;
using Microsoft.Extensions.Time.Testing;

namespace TokenService.Tests.Tables;

/// <summary>
/// Tables that disappear under a running service (an in-memory Azurite restarted, a table deleted by hand): a
/// storage fault, never a 500. The stores re-create a missing table and retry once; what still fails answers 503.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class MissingTableStoreTests(AzuriteFixture azurite)
{
    private readonly FakeTimeProvider _time = new(DateTimeOffset.UtcNow);

    internal static SessionRecord NewSession(string user, DateTimeOffset now) => new()
    {
        SessionId = SessionIds.NewSessionId(user), UserId = user, Subject = user, ClientId = "web", Scope = "", Audiences = ["a"],
        CreatedAt = now, LastActivityAt = now, IdleExpiresAt = now.AddHours(1), AbsoluteExpiresAt = now.AddHours(2),
        RefreshTokenHash = "h", RefreshTokenExpiresAt = now.AddHours(1), WriteId = "w", PurgeAt = now.AddHours(3),
    };

    internal static async Task DeleteTablesAsync(AzuriteFixture azurite)
    {
        var service = azurite.CreateClient();
        await service.DeleteTableAsync(TableNames.Sessions);
        await service.DeleteTableAsync(TableNames.TokenMarkers);
    }

    [Fact]
    public async Task Every_store_operation_recreates_a_deleted_table_and_succeeds()
    {
        var tables = new TableProvisioner(azurite.CreateClient());
        var sessions = new TableSessionStore(tables);
        var markers = new TableTokenMarkerStore(tables, _time);
        var user = "gone-" + Guid.NewGuid().ToString("N");
        Assert.Equal(StoreWriteStatus.Success, await sessions.CommitAsync(new UserSessionsChange(user, null, [NewSession(user, _time.GetUtcNow())], []), default));

        // Each call below meets a deleted table first: it is re-created and the call answers as on an empty table.
        await DeleteTablesAsync(azurite);
        Assert.True(await markers.TryAddAsync("replay-" + Guid.NewGuid().ToString("N"), _time.GetUtcNow().AddMinutes(5), default));

        await DeleteTablesAsync(azurite);
        Assert.Empty((await sessions.GetUserSessionsAsync(user, default)).Sessions);

        await DeleteTablesAsync(azurite);
        var fresh = NewSession(user, _time.GetUtcNow());
        Assert.Equal(StoreWriteStatus.Success, await sessions.CommitAsync(new UserSessionsChange(user, null, [fresh], []), default));
        var stored = await sessions.GetSessionAsync(fresh.SessionId, default);
        Assert.NotNull(stored);

        await DeleteTablesAsync(azurite);
        var jti = "jti-" + Guid.NewGuid().ToString("N");
        await markers.DenyAsync(jti, _time.GetUtcNow().AddMinutes(5), default);
        Assert.True(await markers.IsDeniedAsync(jti, default));

        await DeleteTablesAsync(azurite);
        var eventId = "event-" + Guid.NewGuid().ToString("N");
        await markers.MarkProcessedAsync(eventId, _time.GetUtcNow().AddDays(1), default);
        Assert.True(await markers.IsProcessedAsync(eventId, default));

        await DeleteTablesAsync(azurite);
        Assert.Equal(0, await sessions.PurgeExpiredAsync(_time.GetUtcNow(), default));
        Assert.Equal(0, await markers.PurgeExpiredAsync(_time.GetUtcNow(), default));
        await markers.RemoveAsync("replay-" + Guid.NewGuid().ToString("N"), default);

        // Both tables exist again.
        var service = azurite.CreateClient();
        Assert.Single(service.Query(t => t.Name == TableNames.Sessions));
        Assert.Single(service.Query(t => t.Name == TableNames.TokenMarkers));
    }

    [Fact]
    public async Task A_conditional_write_on_a_recreated_table_fails_as_not_found_or_conflict_never_succeeds()
    {
        var tables = new TableProvisioner(azurite.CreateClient());
        var sessions = new TableSessionStore(tables);
        var user = "cas-" + Guid.NewGuid().ToString("N");
        var session = NewSession(user, _time.GetUtcNow());
        Assert.Equal(StoreWriteStatus.Success, await sessions.CommitAsync(new UserSessionsChange(user, null, [session], []), default));
        var stored = (await sessions.GetSessionAsync(session.SessionId, default))!;
        var snapshot = await sessions.GetUserSessionsAsync(user, default);

        await DeleteTablesAsync(azurite);
        Assert.Equal(StoreWriteStatus.NotFound, (await sessions.ReplaceSessionAsync(stored with { RefreshTokenHash = "h2" }, default)).Status);

        await DeleteTablesAsync(azurite);
        var change = new UserSessionsChange(user, snapshot.Version, [], [stored with { RevokedAt = _time.GetUtcNow() }]);
        Assert.Equal(StoreWriteStatus.Conflict, await sessions.CommitAsync(change, default));
        Assert.Null(await sessions.GetSessionAsync(session.SessionId, default));
    }

    [Theory]
    [InlineData("TableBeingDeleted")]  // Azure, for about 40 s after a delete: the creation fails
    [InlineData("TableAlreadyExists")] // the creation "succeeds" but the table is still not found
    public async Task A_table_that_cannot_be_recreated_is_a_storage_outage(string createAnswer)
    {
        var transport = new TableGoneTransport(createAnswer);
        var tables = new TableProvisioner(new TableServiceClient(azurite.ConnectionString, TableGoneTransport.Options(transport)));
        var sessions = new TableSessionStore(tables);
        var markers = new TableTokenMarkerStore(tables, _time);

        var read = await Assert.ThrowsAsync<DependencyUnavailableException>(async () => await sessions.GetSessionAsync(SessionIds.NewSessionId("u"), default));
        Assert.Equal("storage", read.Dependency);
        await Assert.ThrowsAsync<DependencyUnavailableException>(async () => await sessions.GetUserSessionsAsync("u", default));
        await Assert.ThrowsAsync<DependencyUnavailableException>(async () => await markers.TryAddAsync("k", _time.GetUtcNow().AddMinutes(1), default));
        await Assert.ThrowsAsync<DependencyUnavailableException>(async () => await markers.IsDeniedAsync("k", default));
    }

    [Fact]
    public async Task Concurrent_operations_that_meet_a_deleted_table_create_it_once()
    {
        var creates = new CreateCounter();
        var options = TableStorage.DefaultOptions();
        options.AddPolicy(creates, HttpPipelinePosition.PerRetry);
        var markers = new TableTokenMarkerStore(new TableProvisioner(azurite.CreateClient(options)), _time);
        Assert.True(await markers.TryAddAsync("warm-" + Guid.NewGuid().ToString("N"), _time.GetUtcNow().AddMinutes(1), default));
        await DeleteTablesAsync(azurite);
        creates.Count = 0;

        using var start = new ManualResetEventSlim();
        var adds = Enumerable.Range(0, 20).Select(i => Task.Run(async () =>
        {
            start.Wait();
            return await markers.TryAddAsync($"crowd-{i}-" + Guid.NewGuid().ToString("N"), _time.GetUtcNow().AddMinutes(1), default);
        })).ToList();
        start.Set();

        Assert.All(await Task.WhenAll(adds), Assert.True);
        Assert.Equal(1, creates.Count);
    }

    private sealed class CreateCounter : HttpPipelineSynchronousPolicy
    {
        public int Count;

        public override void OnSendingRequest(HttpMessage message)
        {
            if (message.Request.Method == RequestMethod.Post && message.Request.Uri.Path.EndsWith("/Tables", StringComparison.Ordinal))
            {
                Interlocked.Increment(ref Count);
            }
        }
    }
}

/// <summary>
/// A Table service whose tables are gone and cannot be created (yet): every entity operation answers 404
/// <c>TableNotFound</c>, every table creation 409 with <paramref name="createAnswer"/> (Azure's <c>TableBeingDeleted</c>
/// for about 40 s after a delete).
/// </summary>
internal sealed class TableGoneTransport(string createAnswer = "TableBeingDeleted") : HttpPipelineTransport
{
    private readonly HttpClientTransport _inner = new();

    public static TableClientOptions Options(TableGoneTransport transport)
    {
        var options = TableStorage.DefaultOptions();
        options.Transport = transport;
        options.Retry.MaxRetries = 1;
        options.Retry.Delay = TimeSpan.FromMilliseconds(10);
        return options;
    }

    public override Request CreateRequest() => _inner.CreateRequest();

    public override void Process(HttpMessage message) => ProcessAsync(message).AsTask().GetAwaiter().GetResult();

    public override ValueTask ProcessAsync(HttpMessage message)
    {
        var isCreate = message.Request.Method == RequestMethod.Post && message.Request.Uri.Path.EndsWith("/Tables", StringComparison.Ordinal);
        message.Response = isCreate ? new InjectedResponse(409, errorCode: createAnswer) : new InjectedResponse(404, errorCode: "TableNotFound");
        return ValueTask.CompletedTask;
    }
}

/// <summary>The same through HTTP, on each host with <c>Storage__TableConnectionString</c> pointing at Azurite.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class MissingTableHttpTests(AzuriteFixture azurite) : MissingTableHttpTestsBase(azurite, HostKind.Standalone);

[Collection(AzuriteCollection.Name)]
public sealed class MissingTableHttpTestsOnFunctions(AzuriteFixture azurite) : MissingTableHttpTestsBase(azurite, HostKind.Functions);

/// <summary>Written once, run on both hosts: the standalone host on Kestrel and the Functions app in-process.</summary>
public abstract class MissingTableHttpTestsBase(AzuriteFixture azurite, HostKind kind)
{
    private Task<TokenServiceTestHost> StartAsync(TimeProvider? time = null, Action<Microsoft.Extensions.DependencyInjection.IServiceCollection>? services = null) =>
        TokenServiceTestHost.StartAsync(kind, new Dictionary<string, string?> { ["Storage:TableConnectionString"] = azurite.ConnectionString }, time: time, services: services);

    [Fact]
    public async Task An_exchange_and_a_refresh_succeed_after_the_tables_were_deleted_under_the_running_host()
    {
        var logs = new CapturingLoggerProvider();
        await using var host = await StartAsync(services: logs.AddTo);
        var before = await host.LoginAsync("lost-tables-" + Guid.NewGuid().ToString("N")); // creates the tables

        await MissingTableStoreTests.DeleteTablesAsync(azurite);
        using (var exchange = await host.ExchangeAsync(host.Idp.IdToken("after-" + Guid.NewGuid().ToString("N"))))
        {
            Assert.Equal(HttpStatusCode.OK, exchange.StatusCode);
            using var refresh = await host.RefreshAsync((await JsonAsync(exchange)).GetProperty("refresh_token").GetString()!);
            Assert.Equal(HttpStatusCode.OK, refresh.StatusCode);
        }

        // The warning names the table, the status and the service's error code.
        Assert.Contains(logs.Entries, e => e.Id.Id == 8001 && HasStatusAndCode(e, 404, "TableNotFound"));

        // The session of the lost table is gone with it: its refresh token is refused as unknown, not a fault.
        await MissingTableStoreTests.DeleteTablesAsync(azurite);
        using var lost = await host.RefreshAsync(before.RefreshToken);
        await AssertOAuthErrorAsync(lost, "invalid_grant");
    }

    [Fact]
    public async Task Healthz_is_unhealthy_while_a_table_is_missing_and_healthy_once_it_is_back()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var host = await StartAsync(time);
        await host.LoginAsync("health-" + Guid.NewGuid().ToString("N"));
        using (var healthy = await host.Client.GetAsync("/healthz"))
        {
            Assert.Equal(HttpStatusCode.OK, healthy.StatusCode);
        }

        await azurite.CreateClient().DeleteTableAsync(TableNames.TokenMarkers);
        time.Advance(Endpoints.HealthEndpoint.CacheFor);
        using (var missing = await host.Client.GetAsync("/healthz"))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, missing.StatusCode);
            Assert.Equal("unavailable", (await JsonAsync(missing)).GetProperty("checks").GetProperty("store").GetString());
        }

        // The probe that found the table missing re-created it: the next probe is healthy.
        time.Advance(Endpoints.HealthEndpoint.CacheFor);
        using var back = await host.Client.GetAsync("/healthz");
        Assert.Equal(HttpStatusCode.OK, back.StatusCode);
    }

    [Fact]
    public async Task A_missing_table_that_cannot_be_recreated_answers_503_and_logs_status_and_error_code()
    {
        var logs = new CapturingLoggerProvider();
        var transport = new TableGoneTransport();
        await using var host = await StartAsync(services: s =>
        {
            logs.AddTo(s);
            Microsoft.Extensions.DependencyInjection.ServiceCollectionServiceExtensions.AddSingleton(s, new TableServiceClient(azurite.ConnectionString, TableGoneTransport.Options(transport)));
        });

        using var exchange = await host.ExchangeAsync(host.Idp.IdToken("gone-" + Guid.NewGuid().ToString("N")));
        await AssertOAuthErrorAsync(exchange, "temporarily_unavailable", HttpStatusCode.ServiceUnavailable);
        Assert.NotNull(exchange.Headers.RetryAfter);
        Assert.True(exchange.Headers.CacheControl?.NoStore);

        // The table creation the store tried first was refused: its status and error code are in the log.
        Assert.Contains(logs.Entries, e => e.Id.Id == 8003 && HasStatusAndCode(e, 409, "TableBeingDeleted"));
        Assert.DoesNotContain(logs.Entries, e => e.Id.Id == 1002); // no "unhandled, answered 500"
    }

    private static bool HasStatusAndCode(CapturedLog entry, int status, string errorCode) =>
        entry.Values.Any(v => v.Key == "Status" && Equals(v.Value, status)) && entry.Values.Any(v => v.Key == "ErrorCode" && Equals(v.Value, errorCode));
}
