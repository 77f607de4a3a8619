using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using TokenService.Configuration;
using TokenService.Sessions;
using TokenService.Tests.Hardening;
using TokenService.Tests.Infrastructure;
using TokenService.Tokens;

namespace TokenService.Tests.Sessions;

/// <summary>
/// The session state cache (<see cref="SessionStateCache"/>): a refresh of a session this instance wrote last writes its
/// rotation without reading first, and nothing it holds ever decides an answer. Two instances share one store here, each
/// with its own cache, so that one holds a state the other has changed since: reuse, revocation and refusals still answer
/// as the stored state says (RFC 9700 §4.14.2, RFC 9449 §5). Likewise a returning user's sign-in here commits against
/// the index this instance stored last without reading it, and the per-user limit (ASVS V7), the ID token's single
/// redemption (RFC 8693) and ends decided elsewhere hold as the stored row says.
/// </summary>
public sealed class SessionStateCacheTests
{
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 12, 7, 9, 0, 0, TimeSpan.Zero));
    private readonly CountingSessionStore _store = new(new InMemorySessionStore());

    [Fact]
    public async Task A_refresh_of_a_session_this_instance_wrote_last_writes_its_rotation_without_reading_it()
    {
        var here = New();
        var (_, token) = await OpenAsync(here, "ann");

        for (var i = 0; i < 3; i++)
        {
            _time.Advance(TimeSpan.FromMinutes(5));
            var refreshed = await here.RefreshAsync(token, "web", null, null, TestSessions.IssueAsync, default);
            Assert.Equal(RefreshStatus.Success, refreshed.Status);
            token = refreshed.RefreshToken!;
        }

        Assert.Equal(0, _store.SessionReads);
        Assert.Equal(3, _store.Replaces);
    }

    [Fact]
    public async Task A_refresh_of_a_session_another_instance_rotated_since_reads_it_and_then_writes_without_reading_again()
    {
        var here = New();
        var there = New();
        var (_, first) = await OpenAsync(here, "bob");

        var second = await there.RefreshAsync(first, "web", null, null, TestSessions.IssueAsync, default);
        Assert.Equal(RefreshStatus.Success, second.Status);
        Assert.Equal(1, _store.SessionReads);

        // Back here with the token the other instance issued: the cached state names an older one, so it is read.
        var third = await here.RefreshAsync(second.RefreshToken, "web", null, null, TestSessions.IssueAsync, default);
        Assert.Equal(RefreshStatus.Success, third.Status);
        Assert.Equal(2, _store.SessionReads);
        Assert.Equal(0, _store.ReplaceConflicts);

        var fourth = await here.RefreshAsync(third.RefreshToken, "web", null, null, TestSessions.IssueAsync, default);
        Assert.Equal(RefreshStatus.Success, fourth.Status);
        Assert.Equal(2, _store.SessionReads);
    }

    [Fact]
    public async Task A_superseded_token_presented_where_its_session_is_still_cached_with_it_current_ends_the_session()
    {
        var here = New();
        var there = New();
        var (session, stolen) = await OpenAsync(here, "cy");
        var rotated = await there.RefreshAsync(stolen, "web", null, null, TestSessions.IssueAsync, default);
        Assert.Equal(RefreshStatus.Success, rotated.Status);

        // This instance still holds the state in which the stolen token is current: its write conflicts, the stored
        // state shows the token superseded, and the session ends.
        var replay = await here.RefreshAsync(stolen, "web", null, null, TestSessions.IssueAsync, default);

        Assert.Equal(RefreshStatus.ReuseDetected, replay.Status);
        Assert.Equal(1, _store.ReplaceConflicts);
        var stored = (await _store.GetSessionAsync(session.SessionId, default))!;
        Assert.Equal(SessionEndReason.RefreshTokenReuse.Code, stored.RevocationReason);
        Assert.Equal(RefreshStatus.Invalid, (await there.RefreshAsync(rotated.RefreshToken, "web", null, null, TestSessions.IssueAsync, default)).Status);
    }

    [Theory]
    [InlineData("the session's key")]
    [InlineData("another key")]
    [InlineData(null)]
    public async Task A_DPoP_proof_never_lets_a_superseded_token_pass_where_its_session_is_still_cached(string? proofKey)
    {
        var here = New();
        var there = New();
        var (session, stolen) = await OpenAsync(here, "dee", dpopJkt: "the session's key");
        var rotated = await there.RefreshAsync(stolen, "web", null, "the session's key", TestSessions.IssueAsync, default);
        Assert.Equal(RefreshStatus.Success, rotated.Status);

        var replay = await here.RefreshAsync(stolen, "web", null, proofKey, TestSessions.IssueAsync, default);

        Assert.Equal(RefreshStatus.ReuseDetected, replay.Status);
        Assert.NotNull((await _store.GetSessionAsync(session.SessionId, default))!.RevokedAt);
    }

    [Fact]
    public async Task A_session_ended_on_another_instance_is_refused_although_this_one_cached_it_live_and_nothing_is_rotated()
    {
        var here = New();
        var there = New();
        var (session, token) = await OpenAsync(here, "eve");
        Assert.Equal(1, await there.RevokeAllAsync("eve", SessionEndReason.IdpAccountDisabled, null, null, default));

        var refused = await here.RefreshAsync(token, "web", null, null, TestSessions.IssueAsync, default);

        Assert.Equal(RefreshStatus.Invalid, refused.Status);
        Assert.Equal("The session has ended.", refused.Description);
        var stored = (await _store.GetSessionAsync(session.SessionId, default))!;
        Assert.Equal(session.RefreshTokenHash, stored.RefreshTokenHash);
        Assert.Equal(SessionEndReason.IdpAccountDisabled.Code, stored.RevocationReason);
    }

    [Fact]
    public async Task A_refusal_reached_on_a_cached_state_is_decided_again_on_the_stored_one()
    {
        var here = New();
        var there = New();
        var (_, token) = await OpenAsync(here, "fay");
        Assert.Equal(1, await there.RevokeAllAsync("fay", SessionEndReason.IdpAccountDisabled, null, null, default));

        // A wider scope would be refused on the cached state as invalid_scope; the stored session has ended.
        var refused = await here.RefreshAsync(token, "web", "a b", null, TestSessions.IssueAsync, default);

        Assert.Equal(RefreshStatus.Invalid, refused.Status);
        Assert.Equal("The session has ended.", refused.Description);
    }

    [Fact]
    public async Task A_revocation_here_forgets_the_cached_state()
    {
        var cache = new SessionStateCache();
        var here = New(cache);
        var (session, token) = await OpenAsync(here, "gil");
        Assert.True(cache.TryGet(session.SessionId, out _));

        Assert.True(await here.RevokeSessionAsync(session.SessionId, SessionEndReason.Logout, default));

        Assert.False(cache.TryGet(session.SessionId, out _));
        Assert.Equal(RefreshStatus.Invalid, (await here.RefreshAsync(token, "web", null, null, TestSessions.IssueAsync, default)).Status);
    }

    [Fact]
    public async Task A_returning_users_sign_in_here_commits_against_the_index_this_instance_stored_without_reading_it()
    {
        var here = New();
        await OpenAsync(here, "ivy");

        for (var i = 0; i < 2; i++)
        {
            await OpenAsync(here, "ivy", reset: false);
        }

        Assert.Equal(0, _store.IndexReads);
        Assert.Equal(0, _store.PartitionReads);
        Assert.Equal(2, _store.Commits);
        Assert.Equal(3, (await LiveAsync("ivy")).Count);
    }

    [Fact]
    public async Task Sign_ins_here_on_held_indexes_keep_the_limit_and_end_the_oldest_sessions()
    {
        var here = New(maxSessionsPerUser: 2);
        var opened = new List<SessionRecord>();
        for (var i = 0; i < 5; i++)
        {
            opened.Add((await OpenAsync(here, "pia", reset: false)).Session);
            Assert.InRange((await LiveAsync("pia")).Count, 1, 2);
        }

        Assert.Equal(
            new[] { opened[3].SessionId, opened[4].SessionId }.Order(StringComparer.Ordinal),
            (await LiveAsync("pia")).Select(s => s.SessionId).Order(StringComparer.Ordinal));
        Assert.All(opened.Take(3), s => Assert.Equal(SessionEndReason.SessionLimit.Code, _store.Stored(s.SessionId).RevocationReason));
        Assert.Equal(0, _store.CommitConflicts);
    }

    [Fact]
    public async Task A_sign_in_on_an_index_another_instance_changed_since_fails_its_commit_and_keeps_the_limit_from_the_partition()
    {
        var here = New(maxSessionsPerUser: 2);
        var there = New(maxSessionsPerUser: 2);
        var (first, _) = await OpenAsync(here, "jon");
        var (second, _) = await OpenAsync(there, "jon");

        // Held here: an index that lists one session, room for another; stored: two, the limit.
        var (third, _) = await OpenAsync(here, "jon", reset: false);

        Assert.Equal(1, _store.CommitConflicts);
        Assert.Equal(1, _store.IndexReads);     // after the failed commit, the row as stored: at the limit,
        Assert.Equal(1, _store.PartitionReads); // so the partition decides which session ends
        Assert.Equal(
            new[] { second.SessionId, third.SessionId }.Order(StringComparer.Ordinal),
            (await LiveAsync("jon")).Select(s => s.SessionId).Order(StringComparer.Ordinal));
        Assert.Equal(SessionEndReason.SessionLimit.Code, (await _store.GetSessionAsync(first.SessionId, default))!.RevocationReason);
    }

    [Fact]
    public async Task Racing_sign_ins_on_a_held_index_here_and_on_another_instance_never_pass_the_limit()
    {
        var here = New(maxSessionsPerUser: 2);
        var there = New(maxSessionsPerUser: 2);
        await OpenAsync(here, "oz");

        // Every sign-in's first commit waits until all twelve are in: they were all decided on the same version.
        _store.HoldCommitsUntil(12);
        var racing = Enumerable.Range(0, 12).Select(i => Task.Run(async () =>
            (await (i % 3 == 0 ? there : here).TryOpenAsync(Request("oz", idToken: "racing-" + i), TestSessions.IssueAsync, default))!.Value.Session));
        var opened = await Task.WhenAll(racing);

        Assert.Equal(12, opened.Select(o => o.SessionId).Distinct().Count());
        var stored = (await _store.GetUserSessionsAsync("oz", default)).Sessions;
        Assert.Equal(13, stored.Count);
        var live = stored.Where(s => s.IsLive(_time.GetUtcNow())).Select(s => s.SessionId).ToHashSet();
        Assert.Equal(2, live.Count);
        Assert.Superset(live, (await _store.GetUserIndexAsync("oz", default)).Sessions!.Select(s => s.SessionId).ToHashSet()); // the index lists every live one
        Assert.InRange(_store.CommitConflicts, 11, int.MaxValue); // one of the twelve first commits landed
    }

    [Fact]
    public async Task An_id_token_redeemed_on_another_instance_is_refused_here_although_the_held_index_does_not_name_it()
    {
        var here = New();
        var there = New();
        await OpenAsync(here, "kit", idToken: "id-token-1");
        await OpenAsync(there, "kit", idToken: "id-token-2");

        var replay = await here.TryOpenAsync(Request("kit", idToken: "id-token-2"), TestSessions.IssueAsync, default);

        Assert.Null(replay);
        Assert.Equal(2, (await LiveAsync("kit")).Count);
    }

    [Fact]
    public async Task Sessions_ended_on_another_instance_stay_ended_and_unlisted_when_a_sign_in_here_held_the_index_before()
    {
        var here = New();
        var there = New();
        await OpenAsync(here, "lea");
        await OpenAsync(here, "lea");
        Assert.Equal(2, await there.RevokeAllAsync("lea", SessionEndReason.IdpAccountDisabled, null, null, default));
        _store.Reset();

        var (opened, _) = await OpenAsync(here, "lea", reset: false);

        Assert.Equal(1, _store.CommitConflicts);
        Assert.Equal([opened.SessionId], (await LiveAsync("lea")).Select(s => s.SessionId));
        Assert.Equal([opened.SessionId], (await _store.GetUserIndexAsync("lea", default)).Sessions!.Select(s => s.SessionId));
    }

    [Fact]
    public async Task A_sign_in_whose_commit_on_a_held_index_landed_although_the_store_answered_with_a_conflict_gives_that_session()
    {
        var here = New();
        await OpenAsync(here, "ned", idToken: "id-token-1");
        _store.LoseNextCommitAnswer = true;

        // The retry finds the row changed (by this very commit) and its ID token redeemed: the partition shows the
        // session as this sign-in wrote it, so it is this sign-in's, not a replay.
        var (opened, token) = await OpenAsync(here, "ned", idToken: "id-token-2", reset: false);

        Assert.Contains(opened.SessionId, (await LiveAsync("ned")).Select(s => s.SessionId));
        Assert.Equal(2, (await LiveAsync("ned")).Count);
        Assert.Equal(RefreshStatus.Success, (await here.RefreshAsync(token, "web", null, null, TestSessions.IssueAsync, default)).Status);
    }

    [Fact]
    public async Task A_revocation_of_all_the_users_sessions_here_forgets_the_held_index()
    {
        var cache = new SessionStateCache();
        var here = New(cache);
        await OpenAsync(here, "max");
        Assert.True(cache.TryGetIndex("max", out _));

        Assert.Equal(1, await here.RevokeAllAsync("max", SessionEndReason.IdpAccountDeleted, null, null, default));

        Assert.False(cache.TryGetIndex("max", out _));
    }

    [Fact]
    public async Task While_most_held_indexes_are_stale_sign_ins_read_the_index_first_and_use_held_ones_again_once_they_pay()
    {
        // Room for every sign-in below, so that each decides on the index (a user at the limit reads the partition).
        var here = New(maxSessionsPerUser: 20);
        var there = New(maxSessionsPerUser: 20);

        // Every user signs in here, there, then here again: each index held here is stale by then.
        for (var i = 0; i < 48; i++)
        {
            await OpenAsync(here, "n" + i);
            await OpenAsync(there, "n" + i);
        }

        _store.Reset();
        for (var i = 0; i < 48; i++)
        {
            await OpenAsync(here, "n" + i, reset: false);
        }

        // Without the break-even rule each of the 48 would fail its commit first; with it, the first and the probes.
        Assert.InRange(_store.CommitConflicts, 1, 1 + (48 / SessionStateCache.ProbeEvery));
        Assert.Equal(48, _store.IndexReads); // first or after the failed commit: the row by point, never the partition
        Assert.Equal(0, _store.PartitionReads);

        // Then the users sign in here only: the probes land, and held indexes are used again.
        for (var round = 0; round < 10; round++)
        {
            for (var i = 0; i < 48; i++)
            {
                await OpenAsync(here, "n" + i, reset: false);
            }
        }

        _store.Reset();
        for (var i = 0; i < 16; i++)
        {
            await OpenAsync(here, "n" + i, reset: false);
        }

        Assert.Equal(0, _store.IndexReads);
        Assert.Equal(0, _store.CommitConflicts);
    }

    [Fact]
    public void The_cache_never_holds_more_than_its_capacity()
    {
        using var cache = new SessionStateCache();
        for (var i = 0; i < SessionStateCache.Capacity + 500; i++)
        {
            var user = "u" + i;
            cache.Set(TestSessions.Stored(user, _time.GetUtcNow()) with { ETag = "e" + i });
            cache.SetIndex(user, new UserSessionIndex("v" + i, [], DateTimeOffset.MinValue));
        }

        Assert.InRange(cache.Count, 1, SessionStateCache.Capacity);
        Assert.InRange(cache.IndexCount, 1, SessionStateCache.Capacity);
    }

    [Fact]
    public void A_record_without_an_etag_is_never_kept()
    {
        using var cache = new SessionStateCache();
        var record = TestSessions.Stored("hal", _time.GetUtcNow()) with { ETag = "e1" };
        cache.Set(record);
        cache.Set(record with { ETag = null });

        Assert.False(cache.TryGet(record.SessionId, out _));
    }

    private SessionService New(SessionStateCache? cache = null, int maxSessionsPerUser = 3) =>
        new(_store, Options.Create(new TokenServiceOptions { Issuer = Crafted.ServiceIssuer, MaxSessionsPerUser = maxSessionsPerUser }), _time,
            NullLogger<SessionService>.Instance, TestMetrics.Create(), stateCache: cache ?? new SessionStateCache());

    private OpenSessionRequest Request(string user, string? dpopJkt = null, string? idToken = null) =>
        new(user, user, "web", "a", ["api://orders"], null, null, [], DpopJkt: dpopJkt,
            IdToken: idToken is null ? null : new IdTokenRedemption(idToken, _time.GetUtcNow().AddHours(1)));

    private async Task<(SessionRecord Session, string RefreshToken)> OpenAsync(
        SessionService sessions, string user, string? dpopJkt = null, string? idToken = null, bool reset = true)
    {
        var (session, token, _) = (await sessions.TryOpenAsync(Request(user, dpopJkt, idToken), TestSessions.IssueAsync, default))!.Value;
        if (reset)
        {
            _store.Reset();
        }

        _time.Advance(TimeSpan.FromMinutes(1));
        return (session, token);
    }

    private async Task<List<SessionRecord>> LiveAsync(string user) =>
        (await _store.GetUserSessionsAsync(user, default)).Sessions.Where(s => s.IsLive(_time.GetUtcNow())).ToList();
}
