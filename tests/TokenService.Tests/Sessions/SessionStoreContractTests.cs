using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using TokenService.Configuration;
using TokenService.Sessions;
using TokenService.Tests.Infrastructure;
using TokenService.Tokens;

namespace TokenService.Tests.Sessions;

/// <summary>
/// The contract every <see cref="ISessionStore"/> keeps. Subclass it per store: the embedded store here,
/// Table Storage on Azurite in the Tables tests.
/// </summary>
public abstract class SessionStoreContractTests
{
    protected abstract ISessionStore Store { get; }

    protected static SessionRecord NewSession(string userId, DateTimeOffset now, string? sid = null) => new()
    {
        SessionId = sid ?? SessionIds.NewSessionId(userId),
        UserId = userId,
        Subject = userId,
        ClientId = "web",
        Scope = "a b",
        Audiences = ["api://x", "api://y"],
        CreatedAt = now,
        LastActivityAt = now,
        IdleExpiresAt = now.AddHours(1),
        AbsoluteExpiresAt = now.AddDays(1),
        AuthTime = now.AddMinutes(-1),
        Acr = "urn:mfa",
        Amr = ["pwd", "otp"],
        RefreshTokenHash = "hash-" + Guid.NewGuid().ToString("N"),
        RefreshTokenExpiresAt = now.AddDays(1),
        RetiredRefreshTokenHashes = ["old-1", "old-2"],
        DpopJkt = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I",
        Device = "Firefox on Windows",
        WriteId = Guid.NewGuid().ToString("N"),
        PurgeAt = now.AddDays(1).AddMinutes(15),
    };

    private static DateTimeOffset Now => new(DateTimeOffset.UtcNow.UtcTicks / TimeSpan.TicksPerMillisecond * TimeSpan.TicksPerMillisecond, TimeSpan.Zero);

    [Fact]
    public async Task A_committed_session_reads_back_field_for_field()
    {
        var user = "u-" + Guid.NewGuid().ToString("N");
        var session = NewSession(user, Now);
        Assert.Equal(StoreWriteStatus.Success, await Store.CommitAsync(new UserSessionsChange(user, null, [session], []), default));
        var read = await Store.GetSessionAsync(session.SessionId, default);
        Assert.NotNull(read);
        Assert.NotNull(read!.ETag);
        Assert.Equal(session with { ETag = read.ETag, Audiences = read.Audiences, Amr = read.Amr, RetiredRefreshTokenHashes = read.RetiredRefreshTokenHashes }, read);
        Assert.Equal(session.Audiences, read.Audiences);
        Assert.Equal(session.Amr, read.Amr);
        Assert.Equal(session.RetiredRefreshTokenHashes, read.RetiredRefreshTokenHashes);
    }

    [Fact]
    public async Task A_commit_gives_back_the_etags_of_its_inserted_sessions_and_the_users_version_as_stored_and_none_when_it_conflicts()
    {
        var user = "u-" + Guid.NewGuid().ToString("N");
        var first = NewSession(user, Now);
        var second = NewSession(user, Now);
        var committed = await Store.CommitReturningVersionsAsync(new UserSessionsChange(user, null, [first, second], [], [IndexedSession.Of(first), IndexedSession.Of(second)]), default);

        Assert.Equal(StoreWriteStatus.Success, committed.Status);
        string[] stored = [(await Store.GetSessionAsync(first.SessionId, default))!.ETag!, (await Store.GetSessionAsync(second.SessionId, default))!.ETag!];
        Assert.Equal(stored, committed.InsertedETags!);
        Assert.NotNull(committed.Version);
        Assert.Equal((await Store.GetUserIndexAsync(user, default)).Version, committed.Version);

        // Committed against at once, without a read: the version is the stored one.
        var third = NewSession(user, Now);
        var again = await Store.CommitReturningVersionsAsync(new UserSessionsChange(user, committed.Version, [third], [], [IndexedSession.Of(first), IndexedSession.Of(second), IndexedSession.Of(third)]), default);
        Assert.Equal(StoreWriteStatus.Success, again.Status);
        Assert.NotEqual(committed.Version, again.Version);
        Assert.Equal(StoreWriteStatus.Conflict, (await Store.CommitReturningVersionsAsync(new UserSessionsChange(user, committed.Version, [NewSession(user, Now)], []), default)).Status);

        // Written against at once, without a read: the ETag is the stored one.
        var replaced = await Store.ReplaceSessionAsync(first with { ETag = committed.InsertedETags![0], Generation = 1 }, default);
        Assert.Equal(StoreWriteStatus.Success, replaced.Status);
        Assert.Equal(replaced.Record!.ETag, (await Store.GetSessionAsync(first.SessionId, default))!.ETag);

        var conflicted = await Store.CommitReturningVersionsAsync(new UserSessionsChange(user, null, [NewSession(user, Now)], []), default);
        Assert.Equal(StoreWriteStatus.Conflict, conflicted.Status);
        Assert.Null(conflicted.InsertedETags);
        Assert.Null(conflicted.Version);
    }

    /// <summary>
    /// Storage does not grow with every user ever seen: a purge of a user's last sessions leaves nothing of the user,
    /// the partition's version included, so a writer holding the version read before conflicts, re-reads none and
    /// succeeds; a user with a session still live keeps the version. (Found by the year simulation, YearOfOperationTests.)
    /// </summary>
    [Fact]
    public async Task A_purge_of_a_users_last_sessions_leaves_nothing_of_the_user_and_a_writer_holding_the_old_version_re_reads()
    {
        var cleaner = Assert.IsAssignableFrom<IExpiredStateCleaner>(Store);
        var now = Now;
        var gone = "gone-" + Guid.NewGuid().ToString("N");
        var stays = "stays-" + Guid.NewGuid().ToString("N");
        Assert.Equal(StoreWriteStatus.Success, await Store.CommitAsync(new UserSessionsChange(gone, null, [NewSession(gone, now.AddDays(-3)) with { PurgeAt = now.AddMinutes(-1) }], []), default));
        var live = NewSession(stays, now);
        Assert.Equal(StoreWriteStatus.Success, await Store.CommitAsync(new UserSessionsChange(stays, null, [NewSession(stays, now.AddDays(-3)) with { PurgeAt = now.AddMinutes(-1) }, live], []), default));
        var before = await Store.GetUserSessionsAsync(gone, default);
        Assert.NotNull(before.Version);

        Assert.True(await cleaner.PurgeExpiredAsync(now, default) >= 2);

        var after = await Store.GetUserSessionsAsync(gone, default);
        Assert.Null(after.Version);
        Assert.Empty(after.Sessions);
        var kept = await Store.GetUserSessionsAsync(stays, default);
        Assert.NotNull(kept.Version);
        Assert.Equal(live.SessionId, Assert.Single(kept.Sessions).SessionId);

        var again = NewSession(gone, now);
        Assert.Equal(StoreWriteStatus.Conflict, await Store.CommitAsync(new UserSessionsChange(gone, before.Version, [again], []), default));
        Assert.Equal(StoreWriteStatus.Success, await Store.CommitAsync(new UserSessionsChange(gone, after.Version, [again], []), default));
        Assert.NotNull(await Store.GetSessionAsync(again.SessionId, default));
    }

    /// <summary>Sessions stored before they had a device label (and requests without a User-Agent) read as having none.</summary>
    [Fact]
    public async Task The_index_written_with_a_commit_reads_back_by_point_with_the_partition_version()
    {
        var user = "u-" + Guid.NewGuid().ToString("N");
        var now = Now;
        var first = NewSession(user, now);
        var second = NewSession(user, now.AddSeconds(1)) with { AbsoluteExpiresAt = now.AddDays(3) };
        Assert.Equal(StoreWriteStatus.Success, await Store.CommitAsync(new UserSessionsChange(user, null, [first, second], [], [IndexedSession.Of(first), IndexedSession.Of(second)]), default));

        var index = await Store.GetUserIndexAsync(user, default);
        Assert.Equal((await Store.GetUserSessionsAsync(user, default)).Version, index.Version);
        Assert.Equal([IndexedSession.Of(first), IndexedSession.Of(second)], index.Sessions!);

        // Its version is the partition's: a commit against it succeeds once, and moves it.
        var third = NewSession(user, now);
        Assert.Equal(StoreWriteStatus.Success, await Store.CommitAsync(new UserSessionsChange(user, index.Version, [third], [], [.. index.Sessions!, IndexedSession.Of(third)]), default));
        Assert.Equal(StoreWriteStatus.Conflict, await Store.CommitAsync(new UserSessionsChange(user, index.Version, [NewSession(user, now)], [], []), default));
        var moved = await Store.GetUserIndexAsync(user, default);
        Assert.NotEqual(index.Version, moved.Version);
        Assert.Equal(3, moved.Sessions!.Count);
        Assert.Equal(3, (await Store.GetUserSessionsAsync(user, default)).Sessions.Count);
    }

    [Fact]
    public async Task A_user_without_a_row_has_an_empty_index_and_one_whose_last_commit_wrote_none_has_no_index()
    {
        var user = "u-" + Guid.NewGuid().ToString("N");
        var absent = await Store.GetUserIndexAsync(user, default);
        Assert.Null(absent.Version);
        Assert.Empty(absent.Sessions!);
        Assert.True(absent.IndexedSince <= DateTimeOffset.UtcNow);

        var session = NewSession(user, Now);
        Assert.Equal(StoreWriteStatus.Success, await Store.CommitAsync(new UserSessionsChange(user, null, [session], [], [IndexedSession.Of(session)]), default));
        var version = (await Store.GetUserIndexAsync(user, default)).Version;
        Assert.Equal(StoreWriteStatus.Success, await Store.CommitAsync(new UserSessionsChange(user, version, [NewSession(user, Now)], []), default));
        var none = await Store.GetUserIndexAsync(user, default);
        Assert.Null(none.Sessions);
        Assert.Equal((await Store.GetUserSessionsAsync(user, default)).Version, none.Version);
    }

    [Fact]
    public async Task An_id_token_redeemed_with_a_commit_reads_back_with_the_partition_and_a_second_redemption_conflicts_and_writes_nothing()
    {
        var user = "u-" + Guid.NewGuid().ToString("N");
        var now = Now;
        var redemption = new IdTokenRedemption("rk-" + Guid.NewGuid().ToString("N"), now.AddMinutes(10));
        var first = NewSession(user, now);
        Assert.Equal(StoreWriteStatus.Success, await Store.CommitAsync(new UserSessionsChange(user, null, [first], [], [IndexedSession.Of(first)], redemption, [redemption]), default));
        Assert.Equal([redemption], (await Store.GetUserIndexAsync(user, default)).RecentRedemptions!);
        var read = await Store.GetUserSessionsAsync(user, default);
        Assert.True(read.Redeemed(redemption.ReplayKey));
        Assert.False(read.Redeemed("rk-other"));
        Assert.Equal(first.SessionId, Assert.Single(read.Sessions).SessionId);

        var second = NewSession(user, now);
        Assert.Equal(StoreWriteStatus.Conflict, await Store.CommitAsync(new UserSessionsChange(user, read.Version, [second], [], [IndexedSession.Of(first), IndexedSession.Of(second)], redemption), default));
        Assert.Null(await Store.GetSessionAsync(second.SessionId, default));
        Assert.Equal(read.Version, (await Store.GetUserSessionsAsync(user, default)).Version);

        // Another token of the same user redeems once more; redemptions go with their purge time.
        var other = new IdTokenRedemption("rk-" + Guid.NewGuid().ToString("N"), now.AddMinutes(10));
        Assert.Equal(StoreWriteStatus.Success, await Store.CommitAsync(new UserSessionsChange(user, read.Version, [second], [], [IndexedSession.Of(first), IndexedSession.Of(second)], other), default));
        await ((IExpiredStateCleaner)Store).PurgeExpiredAsync(now.AddMinutes(11), default);
        var purged = await Store.GetUserSessionsAsync(user, default);
        Assert.False(purged.Redeemed(redemption.ReplayKey));
        Assert.False(purged.Redeemed(other.ReplayKey));
        Assert.Equal(2, purged.Sessions.Count);
    }

    [Fact]
    public async Task A_session_without_a_device_label_reads_back_without_one()
    {
        var user = "u-" + Guid.NewGuid().ToString("N");
        var session = NewSession(user, Now) with { Device = null };
        Assert.Equal(StoreWriteStatus.Success, await Store.CommitAsync(new UserSessionsChange(user, null, [session], []), default));
        var read = await Store.GetSessionAsync(session.SessionId, default);
        Assert.NotNull(read);
        Assert.Null(read!.Device);
        Assert.Equal(session.CreatedAt, read.CreatedAt);
    }

    [Fact]
    public async Task Commit_with_a_stale_user_version_conflicts_and_writes_nothing()
    {
        var user = "u-" + Guid.NewGuid().ToString("N");
        var first = NewSession(user, Now);
        Assert.Equal(StoreWriteStatus.Success, await Store.CommitAsync(new UserSessionsChange(user, null, [first], []), default));
        var snapshot = await Store.GetUserSessionsAsync(user, default);
        Assert.NotNull(snapshot.Version);

        var second = NewSession(user, Now);
        Assert.Equal(StoreWriteStatus.Success, await Store.CommitAsync(new UserSessionsChange(user, snapshot.Version, [second], []), default));
        var third = NewSession(user, Now);
        Assert.Equal(StoreWriteStatus.Conflict, await Store.CommitAsync(new UserSessionsChange(user, snapshot.Version, [third], []), default));
        Assert.Equal(StoreWriteStatus.Conflict, await Store.CommitAsync(new UserSessionsChange(user, null, [third], []), default));
        Assert.Null(await Store.GetSessionAsync(third.SessionId, default));
        Assert.Equal(2, (await Store.GetUserSessionsAsync(user, default)).Sessions.Count);
    }

    [Fact]
    public async Task Commit_is_atomic_when_an_updated_record_changed_meanwhile()
    {
        var user = "u-" + Guid.NewGuid().ToString("N");
        var old = NewSession(user, Now);
        await Store.CommitAsync(new UserSessionsChange(user, null, [old], []), default);
        var snapshot = await Store.GetUserSessionsAsync(user, default);
        var stored = snapshot.Sessions.Single();

        // The record changes behind the snapshot's back (a rotation does not bump the user version).
        var rotated = await Store.ReplaceSessionAsync(stored with { RefreshTokenHash = "rotated", WriteId = "w2" }, default);
        Assert.True(rotated.Succeeded);

        var evict = stored with { RevokedAt = Now, RevocationReason = "session_limit" };
        var newcomer = NewSession(user, Now);
        Assert.Equal(StoreWriteStatus.Conflict, await Store.CommitAsync(new UserSessionsChange(user, snapshot.Version, [newcomer], [evict]), default));
        Assert.Null(await Store.GetSessionAsync(newcomer.SessionId, default));
        Assert.Null((await Store.GetSessionAsync(old.SessionId, default))!.RevokedAt);
    }

    [Fact]
    public async Task Replace_is_compare_and_swap_on_the_etag()
    {
        var user = "u-" + Guid.NewGuid().ToString("N");
        var session = NewSession(user, Now);
        await Store.CommitAsync(new UserSessionsChange(user, null, [session], []), default);
        var read = (await Store.GetSessionAsync(session.SessionId, default))!;

        var winner = await Store.ReplaceSessionAsync(read with { RefreshTokenHash = "one", WriteId = "w1" }, default);
        var loser = await Store.ReplaceSessionAsync(read with { RefreshTokenHash = "two", WriteId = "w2" }, default);
        Assert.True(winner.Succeeded);
        Assert.Equal(StoreWriteStatus.Conflict, loser.Status);
        Assert.NotEqual(read.ETag, winner.Record!.ETag);
        var final = (await Store.GetSessionAsync(session.SessionId, default))!;
        Assert.Equal("one", final.RefreshTokenHash);
        Assert.Equal(winner.Record.ETag, final.ETag);
    }

    [Fact]
    public async Task Replacing_a_missing_session_is_not_found()
    {
        var ghost = NewSession("ghost-" + Guid.NewGuid().ToString("N"), Now) with { ETag = "W/\"1\"" };
        Assert.Equal(StoreWriteStatus.NotFound, (await Store.ReplaceSessionAsync(ghost, default)).Status);
    }

    [Fact]
    public async Task Parallel_replaces_of_one_version_have_exactly_one_winner()
    {
        var user = "u-" + Guid.NewGuid().ToString("N");
        var session = NewSession(user, Now);
        await Store.CommitAsync(new UserSessionsChange(user, null, [session], []), default);
        var read = (await Store.GetSessionAsync(session.SessionId, default))!;
        var results = await Task.WhenAll(Enumerable.Range(0, 20).Select(i =>
            Store.ReplaceSessionAsync(read with { RefreshTokenHash = "h" + i, WriteId = "w" + i }, default).AsTask()));
        Assert.Single(results, r => r.Succeeded);
    }

    [Fact]
    public async Task Users_are_isolated_and_unknown_ids_read_as_nothing()
    {
        var a = "a-" + Guid.NewGuid().ToString("N");
        var b = "b-" + Guid.NewGuid().ToString("N");
        await Store.CommitAsync(new UserSessionsChange(a, null, [NewSession(a, Now)], []), default);
        Assert.Empty((await Store.GetUserSessionsAsync(b, default)).Sessions);
        Assert.Null((await Store.GetUserSessionsAsync(b, default)).Version);
        Assert.Null(await Store.GetSessionAsync(SessionIds.NewSessionId(b), default));
        Assert.Null(await Store.GetSessionAsync("not-a-session-id", default));
    }

    [Fact]
    public async Task Cleanup_removes_only_records_past_their_purge_time()
    {
        if (Store is not IExpiredStateCleaner cleaner)
        {
            return;
        }

        var user = "c-" + Guid.NewGuid().ToString("N");
        var now = Now;
        var expired = NewSession(user, now.AddDays(-3)) with { PurgeAt = now.AddMinutes(-1) };
        var live = NewSession(user, now);
        await Store.CommitAsync(new UserSessionsChange(user, null, [expired, live], []), default);
        Assert.True(await cleaner.PurgeExpiredAsync(now, default) >= 1);
        Assert.Null(await Store.GetSessionAsync(expired.SessionId, default));
        Assert.NotNull(await Store.GetSessionAsync(live.SessionId, default));
    }

    // Refresh token reuse detection and DPoP binding (docs/api.md, "Refresh token", "DPoP") on this store, through SessionService (thumbprints are opaque strings here).
    private const string VictimKey = "victim-jkt-0ZcOCORZNYy-DWpqq30jZyJGHTN0d2H";
    private const string ThiefKey = "thief-jkt-NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAf";

    private SessionService Sessions(FakeTimeProvider time, TimeSpan? reuseLeeway = null) => new(
        Store,
        Options.Create(new TokenServiceOptions { Issuer = "https://tokens.test.example", RefreshTokenReuseLeeway = reuseLeeway ?? TimeSpan.Zero }),
        time,
        NullLogger<SessionService>.Instance,
        TestMetrics.Create());

    private static FakeTimeProvider Clock() => new(new DateTimeOffset(2026, 11, 30, 12, 0, 0, TimeSpan.Zero));

    private static ValueTask<IssuedAccessToken> AccessToken(SessionRecord session, string scope, CancellationToken cancellationToken) =>
        ValueTask.FromResult(new IssuedAccessToken("at-" + Guid.NewGuid().ToString("N"), Guid.NewGuid().ToString("N"), session.IdleExpiresAt, 900, scope));

    private static void AssertUnchanged(SessionRecord before, SessionRecord after)
    {
        Assert.Equal(before.ETag, after.ETag);
        Assert.Equal(before.WriteId, after.WriteId);
        Assert.Equal(before.RefreshTokenHash, after.RefreshTokenHash);
        Assert.Null(after.RevokedAt);
    }

    private static async Task<(SessionRecord Session, string RefreshToken)> OpenAsync(SessionService sessions, string? dpopJkt)
    {
        var user = "d-" + Guid.NewGuid().ToString("N");
        var (session, refreshToken, _) = await sessions.OpenAsync(
            new OpenSessionRequest(user, user, "web", "a b", ["api://x"], null, null, [], dpopJkt), AccessToken, default);
        return (session, refreshToken);
    }

    [Fact]
    public async Task A_thief_refreshing_a_stolen_unbound_token_with_a_proof_binds_nothing_and_the_victims_reuse_ends_the_session()
    {
        var time = Clock();
        var sessions = Sessions(time);
        var (opened, rt1) = await OpenAsync(sessions, dpopJkt: null);

        // The thief refreshes first, with a proof of the thief's key: it works, but the session stays unbound.
        var theft = await sessions.RefreshAsync(rt1, "web", null, ThiefKey, AccessToken, default);
        Assert.Equal(RefreshStatus.Success, theft.Status);
        Assert.Null((await Store.GetSessionAsync(opened.SessionId, default))!.DpopJkt);

        // The victim presents the superseded token, without a proof: reuse, and the session ends for everyone.
        time.Advance(TimeSpan.FromMinutes(1));
        var victim = await sessions.RefreshAsync(rt1, "web", null, null, AccessToken, default);
        Assert.Equal(RefreshStatus.ReuseDetected, victim.Status);
        var stored = (await Store.GetSessionAsync(opened.SessionId, default))!;
        Assert.NotNull(stored.RevokedAt);
        Assert.Equal("refresh_token_reuse", stored.RevocationReason);

        var thiefAgain = await sessions.RefreshAsync(theft.RefreshToken, "web", null, ThiefKey, AccessToken, default);
        Assert.Equal(RefreshStatus.Invalid, thiefAgain.Status);
    }

    [Fact]
    public async Task A_refresh_with_a_proof_leaves_an_unbound_session_refreshable_without_one()
    {
        var sessions = Sessions(Clock());
        var (_, rt1) = await OpenAsync(sessions, dpopJkt: null);
        var withProof = await sessions.RefreshAsync(rt1, "web", null, VictimKey, AccessToken, default);
        Assert.Equal(RefreshStatus.Success, withProof.Status);
        Assert.Null(withProof.Session!.DpopJkt);

        var withoutProof = await sessions.RefreshAsync(withProof.RefreshToken, "web", null, null, AccessToken, default);
        Assert.Equal(RefreshStatus.Success, withoutProof.Status);
    }

    [Theory]
    [InlineData(null)]
    [InlineData(ThiefKey)]
    [InlineData(VictimKey)]
    public async Task A_superseded_token_of_a_bound_session_is_reuse_whatever_the_proof(string? presentedKey)
    {
        var time = Clock();
        var sessions = Sessions(time);
        var (opened, rt1) = await OpenAsync(sessions, VictimKey);
        var rotated = await sessions.RefreshAsync(rt1, "web", null, VictimKey, AccessToken, default);
        Assert.Equal(RefreshStatus.Success, rotated.Status);

        time.Advance(TimeSpan.FromMinutes(1));
        var reuse = await sessions.RefreshAsync(rt1, "web", null, presentedKey, AccessToken, default);
        Assert.Equal(RefreshStatus.ReuseDetected, reuse.Status);
        Assert.NotNull((await Store.GetSessionAsync(opened.SessionId, default))!.RevokedAt);
        Assert.Equal(RefreshStatus.Invalid, (await sessions.RefreshAsync(rotated.RefreshToken, "web", null, VictimKey, AccessToken, default)).Status);
    }

    [Theory]
    [InlineData(null)]
    [InlineData(ThiefKey)]
    public async Task The_current_token_of_a_bound_session_without_its_key_is_refused_and_changes_nothing(string? presentedKey)
    {
        var sessions = Sessions(Clock());
        var (opened, rt1) = await OpenAsync(sessions, VictimKey);
        var before = await Store.GetSessionAsync(opened.SessionId, default);

        var refused = await sessions.RefreshAsync(rt1, "web", null, presentedKey, AccessToken, default);
        Assert.Equal(RefreshStatus.ProofKeyMismatch, refused.Status);
        AssertUnchanged(before!, (await Store.GetSessionAsync(opened.SessionId, default))!);
        Assert.Equal(RefreshStatus.Success, (await sessions.RefreshAsync(rt1, "web", null, VictimKey, AccessToken, default)).Status);
    }

    [Fact]
    public async Task The_previous_token_within_the_reuse_leeway_without_the_key_is_refused_and_changes_nothing()
    {
        var time = Clock();
        var sessions = Sessions(time, reuseLeeway: TimeSpan.FromSeconds(30));
        var (opened, rt1) = await OpenAsync(sessions, VictimKey);
        var rotated = await sessions.RefreshAsync(rt1, "web", null, VictimKey, AccessToken, default);
        var before = await Store.GetSessionAsync(opened.SessionId, default);

        // Within the leeway the previous token is not reuse (a lost answer, retried); without the key it is only refused.
        time.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal(RefreshStatus.ProofKeyMismatch, (await sessions.RefreshAsync(rt1, "web", null, ThiefKey, AccessToken, default)).Status);
        AssertUnchanged(before!, (await Store.GetSessionAsync(opened.SessionId, default))!);
        Assert.Equal(RefreshStatus.Success, (await sessions.RefreshAsync(rotated.RefreshToken, "web", null, VictimKey, AccessToken, default)).Status);
    }
}

public sealed class InMemorySessionStoreContractTests : SessionStoreContractTests
{
    private readonly InMemorySessionStore _store = new();

    protected override ISessionStore Store => _store;

    [Fact]
    public async Task A_purge_drops_the_user_partitions_it_empties_so_storage_does_not_grow_with_every_user_ever_seen()
    {
        // Found by the year simulation (YearOfOperationTests): the store kept an empty partition for every user it had seen.
        var now = DateTimeOffset.UtcNow;
        for (var i = 0; i < 50; i++)
        {
            Assert.Equal(StoreWriteStatus.Success, await _store.CommitAsync(new UserSessionsChange("gone-" + i, null, [NewSession("gone-" + i, now)], []), default));
        }

        var stays = NewSession("stays", now) with { PurgeAt = now.AddDays(3) };
        await _store.CommitAsync(new UserSessionsChange("stays", null, [stays], []), default);
        var beforePurge = await _store.GetUserSessionsAsync("gone-0", default);
        Assert.Equal(51, _store.PartitionCount);

        Assert.Equal(50, await _store.PurgeExpiredAsync(now.AddDays(2), default)); // NewSession: PurgeAt one day and 15 minutes on
        Assert.Equal(1, _store.PartitionCount);
        Assert.NotNull(await _store.GetSessionAsync(stays.SessionId, default));

        // The version went with the partition: a writer holding the one read before the purge conflicts and re-reads.
        var again = NewSession("gone-0", now);
        Assert.Equal(StoreWriteStatus.Conflict, await _store.CommitAsync(new UserSessionsChange("gone-0", beforePurge.Version, [again], []), default));
        var fresh = await _store.GetUserSessionsAsync("gone-0", default);
        Assert.Null(fresh.Version);
        Assert.Empty(fresh.Sessions);
        Assert.Equal(StoreWriteStatus.Success, await _store.CommitAsync(new UserSessionsChange("gone-0", fresh.Version, [again], []), default));
        Assert.NotNull(await _store.GetSessionAsync(again.SessionId, default));
    }

    [Fact]
    public async Task A_commit_racing_a_purge_that_drops_its_new_partition_is_never_lost()
    {
        var now = DateTimeOffset.UtcNow;
        using var stop = new CancellationTokenSource();
        var purging = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                await _store.PurgeExpiredAsync(now, default); // purges nothing live, but drops partitions it finds empty
            }
        });
        var users = Enumerable.Range(0, 2000).Select(i => "race-" + i).ToArray();
        await Parallel.ForEachAsync(users, async (user, ct) =>
            Assert.Equal(StoreWriteStatus.Success, await _store.CommitAsync(new UserSessionsChange(user, null, [NewSession(user, now)], []), ct)));
        await stop.CancelAsync();
        await purging;

        foreach (var user in users)
        {
            Assert.Single((await _store.GetUserSessionsAsync(user, default)).Sessions);
        }
    }
}
