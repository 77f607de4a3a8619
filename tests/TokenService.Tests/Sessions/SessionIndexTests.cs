using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using TokenService.Configuration;
using TokenService.Idp;
using TokenService.Sessions;
using TokenService.Tests.Hardening;
using TokenService.Tests.Infrastructure;
using TokenService.Tokens;

namespace TokenService.Tests.Sessions;

/// <summary>
/// The user's index (<see cref="UserSessionIndex"/>): a sign-in with room under the per-user limit reads the user's row
/// by point and commits against its version; one that may need to end a session, or finds no index it can trust, reads
/// the partition as before. The limit holds either way (ASVS V7), under races and lost answers too.
/// </summary>
public sealed class SessionIndexTests
{
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 12, 7, 9, 0, 0, TimeSpan.Zero));
    private readonly CountingSessionStore _store = new(new InMemorySessionStore());

    [Fact]
    public async Task Sign_ins_with_room_under_the_limit_read_the_index_and_never_the_partition()
    {
        var sessions = New(maxPerUser: 3);
        for (var i = 0; i < 3; i++)
        {
            await OpenAsync(sessions, "ann");
        }

        Assert.Equal(3, _store.IndexReads);
        Assert.Equal(0, _store.PartitionReads);
        var index = await _store.GetUserIndexAsync("ann", default);
        var partition = await _store.GetUserSessionsAsync("ann", default);
        Assert.Equal(partition.Version, index.Version);
        Assert.Equal(partition.Sessions.OrderBy(s => s.CreatedAt).Select(IndexedSession.Of), index.Sessions!);
    }

    [Fact]
    public async Task A_sign_in_at_the_limit_reads_the_partition_and_ends_the_oldest_session()
    {
        var sessions = New(maxPerUser: 2);
        var oldest = await OpenAsync(sessions, "bob");
        var second = await OpenAsync(sessions, "bob");
        var third = await OpenAsync(sessions, "bob");

        Assert.Equal(1, _store.PartitionReads);
        var live = (await _store.GetUserSessionsAsync("bob", default)).Sessions.Where(s => s.IsLive(_time.GetUtcNow())).Select(s => s.SessionId);
        Assert.Equal(new[] { second.SessionId, third.SessionId }.Order(), live.Order());
        Assert.Equal(SessionEndReason.SessionLimit.Code, (await _store.GetSessionAsync(oldest.SessionId, default))!.RevocationReason);
        Assert.Equal([second.SessionId, third.SessionId], (await _store.GetUserIndexAsync("bob", default)).Sessions!.Select(s => s.SessionId));
    }

    [Fact]
    public async Task A_session_ended_alone_stays_listed_until_a_sign_in_reads_the_partition_and_lists_only_the_live_ones()
    {
        var sessions = New(maxPerUser: 2);
        var first = await OpenAsync(sessions, "cy");
        var second = await OpenAsync(sessions, "cy");
        Assert.True(await sessions.RevokeSessionAsync(first.SessionId, SessionEndReason.Logout, default));

        // The index still lists the signed-out session (an ended session only costs a partition read later), so this
        // sign-in reads the partition, finds room, ends nothing, and writes the exact list.
        var third = await OpenAsync(sessions, "cy");
        Assert.Equal(1, _store.PartitionReads);
        Assert.True((await _store.GetSessionAsync(second.SessionId, default))!.IsLive(_time.GetUtcNow()), "a live session was ended although there was room");
        Assert.Equal([second.SessionId, third.SessionId], (await _store.GetUserIndexAsync("cy", default)).Sessions!.Select(s => s.SessionId));
    }

    [Fact]
    public async Task Sessions_past_their_absolute_end_leave_the_index_at_the_next_sign_in_without_a_partition_read()
    {
        var sessions = New(maxPerUser: 1);
        await OpenAsync(sessions, "di");
        _time.Advance(new TokenServiceOptions().SessionAbsoluteLifetime);
        var next = await OpenAsync(sessions, "di");

        Assert.Equal(0, _store.PartitionReads);
        Assert.Equal([next.SessionId], (await _store.GetUserIndexAsync("di", default)).Sessions!.Select(s => s.SessionId));
    }

    [Fact]
    public async Task Racing_sign_ins_never_pass_the_limit()
    {
        var sessions = New(maxPerUser: 2);
        await OpenAsync(sessions, "eve");
        var opened = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(() => sessions.OpenAsync(Request("eve"), TestSessions.IssueAsync, default))));

        Assert.Equal(8, opened.Select(o => o.Session.SessionId).Distinct().Count());
        var stored = (await _store.GetUserSessionsAsync("eve", default)).Sessions;
        Assert.Equal(9, stored.Count);
        Assert.Equal(2, stored.Count(s => s.IsLive(_time.GetUtcNow())));
        var listed = (await _store.GetUserIndexAsync("eve", default)).Sessions!.Select(s => s.SessionId).ToHashSet();
        Assert.Superset(stored.Where(s => s.IsLive(_time.GetUtcNow())).Select(s => s.SessionId).ToHashSet(), listed); // the index lists every live one
    }

    [Fact]
    public async Task A_sign_in_whose_commit_landed_but_was_answered_with_a_conflict_opens_one_session_not_two()
    {
        var sessions = New(maxPerUser: 3);
        _store.LoseNextCommitAnswer = true;
        var opened = await OpenAsync(sessions, "fay");

        var stored = Assert.Single((await _store.GetUserSessionsAsync("fay", default)).Sessions);
        Assert.Equal(opened.SessionId, stored.SessionId);
        Assert.Equal(1, _store.Commits);
        Assert.Equal([opened.SessionId], (await _store.GetUserIndexAsync("fay", default)).Sessions!.Select(s => s.SessionId));
    }

    [Fact]
    public async Task A_user_whose_row_holds_no_index_has_the_partition_read_and_gets_one_written()
    {
        var sessions = New(maxPerUser: 1);
        var legacy = TestSessions.Stored("gus", _time.GetUtcNow());
        Assert.Equal(StoreWriteStatus.Success, await _store.CommitAsync(new UserSessionsChange("gus", null, [legacy], []), default)); // an earlier version: no index
        Assert.Null((await _store.GetUserIndexAsync("gus", default)).Sessions);

        var opened = await OpenAsync(sessions, "gus");
        Assert.Equal(1, _store.PartitionReads);
        Assert.Equal(SessionEndReason.SessionLimit.Code, (await _store.GetSessionAsync(legacy.SessionId, default))!.RevocationReason);
        Assert.Equal([opened.SessionId], (await _store.GetUserIndexAsync("gus", default)).Sessions!.Select(s => s.SessionId));
    }

    [Fact]
    public async Task A_missing_row_in_a_store_that_began_keeping_indexes_a_session_lifetime_ago_needs_no_partition_read()
    {
        // (Before then, the Table store's TableSessionIndexTests show a missing row read as the partition.)
        var store = new CountingSessionStore(new InMemorySessionStore()) { IndexedSinceForMissingRows = _time.GetUtcNow() };
        var sessions = New(maxPerUser: 1, store);
        await OpenAsync(sessions, "hal");
        Assert.Equal(1, store.PartitionReads);

        _time.Advance(new TokenServiceOptions().SessionAbsoluteLifetime);
        await OpenAsync(sessions, "ida");
        Assert.Equal(1, store.PartitionReads);
    }

    [Fact]
    public async Task An_id_token_opens_one_session_and_its_second_redemption_is_refused_with_nothing_written()
    {
        var sessions = New(maxPerUser: 3);
        var token = Redemption();
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.NotNull(await sessions.TryOpenAsync(Request("jo", token), TestSessions.IssueAsync, default));
        Assert.Null(await sessions.TryOpenAsync(Request("jo", token), TestSessions.IssueAsync, default));
        Assert.Null(await sessions.TryOpenAsync(Request("jo", token), TestSessions.IssueAsync, default));

        Assert.Single((await _store.GetUserSessionsAsync("jo", default)).Sessions);
        Assert.Equal(1, _store.Commits);
        Assert.NotNull(await sessions.TryOpenAsync(Request("jo", Redemption()), TestSessions.IssueAsync, default)); // another token of the user
    }

    [Fact]
    public async Task A_replay_the_users_row_names_is_refused_before_an_access_token_is_signed()
    {
        var sessions = New(maxPerUser: 3);
        var token = Redemption();
        var signed = 0;
        AccessTokenFactory counting = (session, scope, ct) =>
        {
            Interlocked.Increment(ref signed);
            return TestSessions.IssueAsync(session, scope, ct);
        };

        Assert.NotNull(await sessions.TryOpenAsync(Request("nia", token), counting, default));
        Assert.Null(await sessions.TryOpenAsync(Request("nia", token), counting, default));
        Assert.Equal(1, signed);
        Assert.Equal(0, _store.PartitionReads);
    }

    [Fact]
    public async Task A_replay_of_a_token_older_than_the_rows_latest_redemptions_is_still_refused_by_the_commit()
    {
        var sessions = New(maxPerUser: 50);
        var first = Redemption();
        Assert.NotNull(await sessions.TryOpenAsync(Request("oli", first), TestSessions.IssueAsync, default));
        for (var i = 0; i < 8; i++)
        {
            Assert.NotNull(await sessions.TryOpenAsync(Request("oli", Redemption()), TestSessions.IssueAsync, default));
        }

        Assert.DoesNotContain((await _store.GetUserIndexAsync("oli", default)).RecentRedemptions!, r => r.ReplayKey == first.ReplayKey);
        Assert.Null(await sessions.TryOpenAsync(Request("oli", first), TestSessions.IssueAsync, default));
        Assert.Equal(9, (await _store.GetUserSessionsAsync("oli", default)).Sessions.Count);
    }

    [Fact]
    public async Task Racing_redemptions_of_one_id_token_open_one_session()
    {
        var sessions = New(maxPerUser: 3);
        var token = Redemption();
        var results = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(() => sessions.TryOpenAsync(Request("kai", token), TestSessions.IssueAsync, default))));

        Assert.Single(results, r => r is not null);
        Assert.Single((await _store.GetUserSessionsAsync("kai", default)).Sessions);
    }

    [Fact]
    public async Task A_sign_in_that_fails_leaves_its_id_token_redeemable()
    {
        var sessions = New(maxPerUser: 3);
        var token = Redemption();
        _store.FailCommits = true;
        await Assert.ThrowsAsync<DependencyUnavailableException>(() => sessions.TryOpenAsync(Request("lu", token), TestSessions.IssueAsync, default));
        _store.FailCommits = false;

        Assert.NotNull(await sessions.TryOpenAsync(Request("lu", token), TestSessions.IssueAsync, default));
    }

    [Fact]
    public async Task Within_a_session_lifetime_of_the_store_beginning_to_keep_redemptions_the_earlier_markers_are_consulted_and_kept_too()
    {
        var store = new CountingSessionStore(new InMemorySessionStore()) { IndexedSinceForMissingRows = _time.GetUtcNow(), IndexedSinceForRows = _time.GetUtcNow() };
        var earlier = new InMemoryIdTokenReplayCache(_time);
        var sessions = New(maxPerUser: 3, store, earlier);

        // Redeemed by the earlier version: recorded in its markers only.
        var redeemedBefore = Redemption();
        Assert.True(await earlier.TryAddAsync(redeemedBefore.ReplayKey, redeemedBefore.ExpiresAt, default));
        Assert.Null(await sessions.TryOpenAsync(Request("max", redeemedBefore), TestSessions.IssueAsync, default));

        // Redeemed now: recorded in both, so that a replay is refused by this version and an earlier one alike.
        var redeemedNow = Redemption();
        Assert.NotNull(await sessions.TryOpenAsync(Request("max", redeemedNow), TestSessions.IssueAsync, default));
        Assert.False(await earlier.TryAddAsync(redeemedNow.ReplayKey, redeemedNow.ExpiresAt, default));

        // A sign-in that fails forgets its earlier marker again.
        var failing = Redemption();
        store.FailCommits = true;
        await Assert.ThrowsAsync<DependencyUnavailableException>(() => sessions.TryOpenAsync(Request("max", failing), TestSessions.IssueAsync, default));
        store.FailCommits = false;
        Assert.True(await earlier.TryAddAsync(failing.ReplayKey, failing.ExpiresAt, default), "the failed sign-in's marker stayed");

        // A session lifetime later no earlier marker can matter: they are neither read nor written.
        _time.Advance(new TokenServiceOptions().SessionAbsoluteLifetime);
        var later = Redemption();
        Assert.NotNull(await sessions.TryOpenAsync(Request("max", later), TestSessions.IssueAsync, default));
        Assert.True(await earlier.TryAddAsync(later.ReplayKey, later.ExpiresAt, default), "a marker was written after the horizon");
    }

    private IdTokenRedemption Redemption() => new("rk-" + Guid.NewGuid().ToString("N"), _time.GetUtcNow().AddMinutes(10));

    private SessionService New(int maxPerUser, ISessionStore? store = null, IIdTokenReplayCache? earlier = null) =>
        new(store ?? _store, Options.Create(new TokenServiceOptions { Issuer = Crafted.ServiceIssuer, MaxSessionsPerUser = maxPerUser }), _time,
            NullLogger<SessionService>.Instance, TestMetrics.Create(), earlierReplayMarkers: earlier);

    private async Task<SessionRecord> OpenAsync(SessionService sessions, string user)
    {
        _time.Advance(TimeSpan.FromSeconds(1));
        return (await sessions.OpenAsync(Request(user), TestSessions.IssueAsync, default)).Session;
    }

    private static OpenSessionRequest Request(string user, IdTokenRedemption? idToken = null) =>
        new(user, user, "web", "a", ["api://orders"], null, null, [], IdToken: idToken);
}
