using Azure.Data.Tables;
using Microsoft.Extensions.Time.Testing;
using TokenService.Azure.Tables;
using TokenService.Azure.Tables.Stores;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using TokenService.Configuration;
using TokenService.Sessions;
using TokenService.Tests.Hardening;
using TokenService.Tests.Infrastructure;
using TokenService.Tokens;

namespace TokenService.Tests.Tables;

/// <summary>
/// The user's index on Table Storage: kept on the user row, trusted only in the format this version writes, and a
/// missing row trusted only in a table whose sessions were all opened by a version that keeps indexes.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class TableSessionIndexTests(AzuriteFixture azurite)
{
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 12, 7, 9, 0, 0, TimeSpan.Zero));

    [Fact]
    public async Task A_sessions_table_the_service_creates_is_indexed_from_the_start()
    {
        await MissingTableStoreTests.DeleteTablesAsync(azurite);
        var store = new TableSessionStore(new TableProvisioner(azurite.CreateClient()), _time);

        var absent = await store.GetUserIndexAsync("new-" + Guid.NewGuid().ToString("N"), default);
        Assert.Null(absent.Version);
        Assert.Equal(DateTimeOffset.MinValue, absent.IndexedSince);
    }

    [Fact]
    public async Task An_empty_sessions_table_created_outside_the_service_is_indexed_from_the_start()
    {
        // infra/ creates the tables: the provisioner then finds them and marks nothing.
        await MissingTableStoreTests.DeleteTablesAsync(azurite);
        await azurite.CreateClient().CreateTableIfNotExistsAsync(TableNames.Sessions);

        var absent = await new TableSessionStore(new TableProvisioner(azurite.CreateClient()), _time).GetUserIndexAsync("new-" + Guid.NewGuid().ToString("N"), default);
        Assert.Equal(DateTimeOffset.MinValue, absent.IndexedSince);
    }

    [Fact]
    public async Task A_sessions_table_found_without_the_mark_is_indexed_from_the_first_look_for_every_instance()
    {
        var tables = new TableProvisioner(azurite.CreateClient());
        await tables.EnsureAsync(default);
        // A table an earlier version created and wrote: no mark, and rows.
        await tables.Sessions.DeleteEntityAsync(TableSessionStore.IndexedSincePartition, TableSessionStore.IndexedSinceRow);
        var user = "earlier-" + Guid.NewGuid().ToString("N");
        await tables.Sessions.AddEntityAsync(new TableEntity(SessionIds.PartitionKeyForUser(user), "!user") { ["UserId"] = user });
        try
        {
            var first = await new TableSessionStore(tables, _time).GetUserIndexAsync("u-" + Guid.NewGuid().ToString("N"), default);
            Assert.Equal(_time.GetUtcNow(), first.IndexedSince);

            _time.Advance(TimeSpan.FromHours(1));
            var other = await new TableSessionStore(new TableProvisioner(azurite.CreateClient()), _time).GetUserIndexAsync("u-" + Guid.NewGuid().ToString("N"), default);
            Assert.Equal(first.IndexedSince, other.IndexedSince);
        }
        finally
        {
            // The other tests of this Azurite expect the table as the service creates it.
            await tables.Sessions.DeleteEntityAsync(TableSessionStore.IndexedSincePartition, TableSessionStore.IndexedSinceRow);
            await TableSessionStore.MarkIndexedFromStartAsync(tables.Sessions, default);
        }
    }

    [Fact]
    public async Task In_a_table_of_an_earlier_version_a_user_without_a_row_still_has_the_partition_read_so_the_limit_holds()
    {
        var tables = new TableProvisioner(azurite.CreateClient());
        await tables.EnsureAsync(default);
        await tables.Sessions.DeleteEntityAsync(TableSessionStore.IndexedSincePartition, TableSessionStore.IndexedSinceRow);
        try
        {
            // An earlier version opened a session and its purge then deleted the user row while the session, refreshed,
            // lived on (it kept no index and purged the row by the sessions' first purge time).
            var user = "earlier-" + Guid.NewGuid().ToString("N");
            var now = _time.GetUtcNow();
            var earlier = MissingTableStoreTests.NewSession(user, now) with { AbsoluteExpiresAt = now.AddDays(7) };
            var store = new TableSessionStore(tables, _time);
            Assert.Equal(StoreWriteStatus.Success, await store.CommitAsync(new UserSessionsChange(user, null, [earlier], []), default));
            await tables.Sessions.DeleteEntityAsync(SessionIds.PartitionKeyForUser(user), "!user");

            var sessions = new SessionService(
                store, Options.Create(new TokenServiceOptions { Issuer = Crafted.ServiceIssuer, MaxSessionsPerUser = 1 }), _time,
                NullLogger<SessionService>.Instance, TestMetrics.Create());
            var opened = await sessions.OpenAsync(new OpenSessionRequest(user, user, "web", "a", ["api://orders"], null, null, []), TestSessions.IssueAsync, default);

            var stored = (await store.GetUserSessionsAsync(user, default)).Sessions;
            Assert.Equal([opened.Session.SessionId], stored.Where(s => s.IsLive(_time.GetUtcNow())).Select(s => s.SessionId));
            Assert.Equal(SessionEndReason.SessionLimit.Code, stored.Single(s => s.SessionId == earlier.SessionId).RevocationReason);
        }
        finally
        {
            await tables.Sessions.DeleteEntityAsync(TableSessionStore.IndexedSincePartition, TableSessionStore.IndexedSinceRow);
            await TableSessionStore.MarkIndexedFromStartAsync(tables.Sessions, default);
        }
    }


    [Theory]
    [InlineData(null)]                      // a row of a version that kept no index
    [InlineData("2;x")]                     // a format this version does not write
    [InlineData("1;not-a-sid.638000000000000000")]
    [InlineData("1;AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.soon")]
    public async Task A_user_row_without_an_index_in_this_versions_format_has_none(string? index)
    {
        var user = "u-" + Guid.NewGuid().ToString("N");
        var tables = new TableProvisioner(azurite.CreateClient());
        await tables.EnsureAsync(default);
        var row = new TableEntity(SessionIds.PartitionKeyForUser(user), "!user") { ["UserId"] = user };
        if (index is not null)
        {
            row["Index"] = index;
        }

        await tables.Sessions.AddEntityAsync(row);
        var read = await new TableSessionStore(tables, _time).GetUserIndexAsync(user, default);
        Assert.Null(read.Sessions);
        Assert.NotNull(read.Version);
    }

    [Fact]
    public async Task The_user_row_stays_until_its_last_listed_session_is_past_its_absolute_end()
    {
        var store = new TableSessionStore(new TableProvisioner(azurite.CreateClient()), _time);
        var user = "u-" + Guid.NewGuid().ToString("N");
        var now = _time.GetUtcNow();
        var session = MissingTableStoreTests.NewSession(user, now) with { AbsoluteExpiresAt = now.AddDays(7) }; // PurgeAt now + 3 h
        Assert.Equal(StoreWriteStatus.Success, await store.CommitAsync(new UserSessionsChange(user, null, [session], [], [IndexedSession.Of(session)]), default));

        // The session row may go once its purge time passed (a refresh would have moved it); the user row may not: a
        // refreshed session can be live until its absolute end, and a missing row would count as none.
        await store.PurgeExpiredAsync(now.AddDays(1), default);
        Assert.NotNull((await store.GetUserIndexAsync(user, default)).Version);

        await store.PurgeExpiredAsync(now.AddDays(7).AddMinutes(1), default);
        Assert.Null((await store.GetUserIndexAsync(user, default)).Version);
    }
}
