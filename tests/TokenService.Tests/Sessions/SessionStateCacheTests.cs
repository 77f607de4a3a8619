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
/// as the stored state says (RFC 9700 §4.14.2, RFC 9449 §5).
/// </summary>
public sealed class SessionStateCacheTests
{
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 12, 7, 9, 0, 0, TimeSpan.Zero));
    private readonly CountingStore _store = new(new InMemorySessionStore());

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
        Assert.Equal(0, _store.Conflicts);

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
        Assert.Equal(1, _store.Conflicts);
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
    public void The_cache_never_holds_more_than_its_capacity()
    {
        using var cache = new SessionStateCache();
        for (var i = 0; i < SessionStateCache.Capacity + 500; i++)
        {
            var user = "u" + i;
            cache.Set(TestSessions.Stored(user, _time.GetUtcNow()) with { ETag = "e" + i });
        }

        Assert.InRange(cache.Count, 1, SessionStateCache.Capacity);
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

    private SessionService New(SessionStateCache? cache = null) =>
        new(_store, Options.Create(new TokenServiceOptions { Issuer = Crafted.ServiceIssuer }), _time,
            NullLogger<SessionService>.Instance, TestMetrics.Create(), stateCache: cache ?? new SessionStateCache());

    private async Task<(SessionRecord Session, string RefreshToken)> OpenAsync(SessionService sessions, string user, string? dpopJkt = null)
    {
        var (session, token, _) = await sessions.OpenAsync(new(user, user, "web", "a", ["api://orders"], null, null, [], DpopJkt: dpopJkt), TestSessions.IssueAsync, default);
        _store.Reset();
        _time.Advance(TimeSpan.FromMinutes(1));
        return (session, token);
    }

    /// <summary>The in-memory store counting session reads, replaces and their conflicts; it passes on the commit's ETags.</summary>
    private sealed class CountingStore(InMemorySessionStore inner) : ISessionStore
    {
        private int _sessionReads;
        private int _replaces;
        private int _conflicts;

        public int SessionReads => _sessionReads;

        public int Replaces => _replaces;

        public int Conflicts => _conflicts;

        public void Reset()
        {
            _sessionReads = 0;
            _replaces = 0;
            _conflicts = 0;
        }

        public ValueTask<SessionRecord?> GetSessionAsync(string sessionId, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _sessionReads);
            return inner.GetSessionAsync(sessionId, cancellationToken);
        }

        public ValueTask<UserSessionIndex> GetUserIndexAsync(string userId, CancellationToken cancellationToken) => inner.GetUserIndexAsync(userId, cancellationToken);

        public ValueTask<UserSessions> GetUserSessionsAsync(string userId, CancellationToken cancellationToken) => inner.GetUserSessionsAsync(userId, cancellationToken);

        public async ValueTask<StoreWriteResult> ReplaceSessionAsync(SessionRecord updated, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _replaces);
            var result = await inner.ReplaceSessionAsync(updated, cancellationToken);
            if (result.Status == StoreWriteStatus.Conflict)
            {
                Interlocked.Increment(ref _conflicts);
            }

            return result;
        }

        public ValueTask<StoreWriteStatus> CommitAsync(UserSessionsChange change, CancellationToken cancellationToken) => inner.CommitAsync(change, cancellationToken);

        public ValueTask<StoreCommitResult> CommitReturningVersionsAsync(UserSessionsChange change, CancellationToken cancellationToken) =>
            inner.CommitReturningVersionsAsync(change, cancellationToken);
    }
}
