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
/// <see cref="ISessionEndedSink"/> (the Shared Signals transmitter's input): told of every committed end of a session
/// with its typed reason, only after the store accepted the change (the sink reads the store and finds the session
/// already ended), never for a change that failed, and never for idle or absolute expiry.
/// </summary>
public sealed class SessionEndedSinkTests
{
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 12, 6, 12, 0, 0, TimeSpan.Zero));
    private readonly InMemorySessionStore _store = new();
    private readonly RecordingSink _sink;
    private readonly SessionService _sessions;

    public SessionEndedSinkTests()
    {
        _sink = new RecordingSink(_store);
        _sessions = New(_store, _sink);
    }

    [Theory]
    [MemberData(nameof(SingleSessionReasons))]
    public async Task Ending_one_session_tells_the_sink_after_the_commit_with_its_reason(string code)
    {
        SessionEndReason.TryParse(code, out var reason);
        var opened = await OpenAsync("ann");
        Assert.True(await _sessions.RevokeSessionAsync(opened.SessionId, reason!, default));

        var told = Assert.Single(_sink.Calls);
        Assert.Same(reason, told.Reason);
        Assert.Equal(opened.SessionId, Assert.Single(told.Sessions).SessionId);
        Assert.Equal(_time.GetUtcNow(), told.EndedAt);
        Assert.True(told.AllEndedInStore, "the sink was called before the end was stored");
    }

    public static TheoryData<string> SingleSessionReasons => [SessionEndReason.Logout.Code, SessionEndReason.ClientRevocation.Code];

    [Fact]
    public async Task Reuse_detection_tells_the_sink_once_the_session_is_revoked()
    {
        var (_, first, _) = await _sessions.OpenAsync(Request("rex"), TestSessions.IssueAsync, default);
        var rotated = await _sessions.RefreshAsync(first, "web", null, null, TestSessions.IssueAsync, default);
        Assert.Equal(RefreshStatus.Success, rotated.Status);
        _time.Advance(TimeSpan.FromMinutes(5)); // past the reuse leeway
        Assert.Equal(RefreshStatus.ReuseDetected, (await _sessions.RefreshAsync(first, "web", null, null, TestSessions.IssueAsync, default)).Status);

        var told = Assert.Single(_sink.Calls);
        Assert.Same(SessionEndReason.RefreshTokenReuse, told.Reason);
        Assert.True(told.AllEndedInStore);
    }

    [Fact]
    public async Task The_session_limit_tells_the_sink_of_the_evicted_sessions_only()
    {
        var options = new TokenServiceOptions { Issuer = Crafted.ServiceIssuer, MaxSessionsPerUser = 2 };
        var sessions = New(_store, _sink, options);
        var oldest = (await sessions.OpenAsync(Request("lim"), TestSessions.IssueAsync, default)).Session;
        _time.Advance(TimeSpan.FromSeconds(1));
        await sessions.OpenAsync(Request("lim"), TestSessions.IssueAsync, default);
        Assert.Empty(_sink.Calls); // opening within the limit ends nothing
        _time.Advance(TimeSpan.FromSeconds(1));
        await sessions.OpenAsync(Request("lim"), TestSessions.IssueAsync, default);

        var told = Assert.Single(_sink.Calls);
        Assert.Same(SessionEndReason.SessionLimit, told.Reason);
        Assert.Equal(oldest.SessionId, Assert.Single(told.Sessions).SessionId);
        Assert.True(told.AllEndedInStore);
    }

    [Theory]
    [MemberData(nameof(UserWideReasons))]
    public async Task Ending_every_session_of_a_user_tells_the_sink_once_with_every_ended_session(string code, bool keepOne)
    {
        SessionEndReason.TryParse(code, out var reason);
        var kept = await OpenAsync("uma");
        var other = await OpenAsync("uma");
        Assert.Equal(keepOne ? 1 : 2, await _sessions.RevokeAllAsync("uma", reason!, keepOne ? kept.SessionId : null, null, default));

        var told = Assert.Single(_sink.Calls);
        Assert.Same(reason, told.Reason);
        Assert.Equal(keepOne ? [other.SessionId] : new[] { kept.SessionId, other.SessionId }.Order(StringComparer.Ordinal), told.Sessions.Select(s => s.SessionId).Order(StringComparer.Ordinal));
        Assert.True(told.AllEndedInStore);
    }

    public static TheoryData<string, bool> UserWideReasons => new()
    {
        { SessionEndReason.OtherSessionsEndedByUser.Code, true },
        { SessionEndReason.AdminLogout.Code, false },
        { SessionEndReason.IdpAccountDisabled.Code, false },
        { SessionEndReason.SsfSessionRevoked.Code, false },
    };

    [Fact]
    public async Task A_commit_that_fails_tells_the_sink_nothing()
    {
        var failing = new FailingStore(_store);
        var sessions = New(failing, _sink);
        var opened = await OpenAsync("fay");
        failing.Fail = true;

        await Assert.ThrowsAsync<DependencyUnavailableException>(() => sessions.RevokeSessionAsync(opened.SessionId, SessionEndReason.Logout, default));
        await Assert.ThrowsAsync<DependencyUnavailableException>(() => sessions.RevokeAllAsync("fay", SessionEndReason.AdminLogout, null, null, default));
        Assert.Empty(_sink.Calls);
        Assert.True((await _store.GetSessionAsync(opened.SessionId, default))!.IsLive(_time.GetUtcNow()));
    }

    [Fact]
    public async Task A_session_already_ended_elsewhere_is_not_told_again()
    {
        var opened = await OpenAsync("dot");
        Assert.True(await _sessions.RevokeSessionAsync(opened.SessionId, SessionEndReason.Logout, default));
        Assert.False(await _sessions.RevokeSessionAsync(opened.SessionId, SessionEndReason.ClientRevocation, default));
        Assert.Equal(0, await _sessions.RevokeAllAsync("dot", SessionEndReason.AdminLogout, null, null, default));
        Assert.Single(_sink.Calls);
    }

    [Fact]
    public async Task Idle_and_absolute_expiry_tell_the_sink_nothing()
    {
        var idle = await OpenAsync("ida");
        _time.Advance(new TokenServiceOptions().SessionIdleTimeout + TimeSpan.FromSeconds(1));
        Assert.Equal(0, await _sessions.RevokeAllAsync("ida", SessionEndReason.AdminLogout, null, null, default));
        var lasting = await OpenAsync("abe");
        _time.Advance(new TokenServiceOptions().SessionAbsoluteLifetime);
        Assert.Equal(0, await _sessions.RevokeAllAsync("abe", SessionEndReason.AdminLogout, null, null, default));
        Assert.False((await _store.GetSessionAsync(idle.SessionId, default))!.IsLive(_time.GetUtcNow()));
        Assert.False((await _store.GetSessionAsync(lasting.SessionId, default))!.IsLive(_time.GetUtcNow()));
        Assert.Empty(_sink.Calls);
    }

    [Fact]
    public async Task A_revocation_stored_although_its_answer_was_a_conflict_tells_the_sink_once()
    {
        // A store that retries a write whose first try succeeded gets 412 for its own change (its ETag is gone): the
        // session is ended, and the retry that rereads it must report that end, not take it for someone else's.
        var lossy = new LostAnswerStore(_store);
        var sessions = New(lossy, _sink);
        var opened = await OpenAsync("lou");
        lossy.LoseNextAnswer = true;

        Assert.True(await sessions.RevokeSessionAsync(opened.SessionId, SessionEndReason.Logout, default));

        Assert.Equal(1, lossy.AnswersLost);
        var told = Assert.Single(_sink.Calls);
        Assert.Same(SessionEndReason.Logout, told.Reason);
        Assert.Equal(opened.SessionId, Assert.Single(told.Sessions).SessionId);
        Assert.Equal(_time.GetUtcNow(), told.EndedAt);
        Assert.True(told.AllEndedInStore);
    }

    [Fact]
    public async Task Ending_every_session_of_a_user_stored_although_its_answer_was_a_conflict_tells_the_sink_once()
    {
        var lossy = new LostAnswerStore(_store);
        var sessions = New(lossy, _sink);
        var first = await OpenAsync("liz");
        var second = await OpenAsync("liz");
        lossy.LoseNextAnswer = true;

        Assert.Equal(2, await sessions.RevokeAllAsync("liz", SessionEndReason.AdminLogout, null, null, default));

        Assert.Equal(1, lossy.AnswersLost);
        var told = Assert.Single(_sink.Calls);
        Assert.Same(SessionEndReason.AdminLogout, told.Reason);
        Assert.Equal(new[] { first.SessionId, second.SessionId }.Order(StringComparer.Ordinal), told.Sessions.Select(s => s.SessionId).Order(StringComparer.Ordinal));
        Assert.True(told.AllEndedInStore);
    }

    [Fact]
    public async Task An_eviction_stored_although_the_opening_commit_answered_a_conflict_tells_the_sink_once()
    {
        var options = new TokenServiceOptions { Issuer = Crafted.ServiceIssuer, MaxSessionsPerUser = 1 };
        var lossy = new LostAnswerStore(_store);
        var sessions = New(lossy, _sink, options);
        var oldest = (await sessions.OpenAsync(Request("lea"), TestSessions.IssueAsync, default)).Session;
        _time.Advance(TimeSpan.FromSeconds(1));
        lossy.LoseNextAnswer = true;

        var newest = (await sessions.OpenAsync(Request("lea"), TestSessions.IssueAsync, default)).Session;

        Assert.Equal(1, lossy.AnswersLost);
        Assert.True(newest.IsLive(_time.GetUtcNow()));
        var told = Assert.Single(_sink.Calls);
        Assert.Same(SessionEndReason.SessionLimit, told.Reason);
        Assert.Equal(oldest.SessionId, Assert.Single(told.Sessions).SessionId);
        Assert.True(told.AllEndedInStore);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Signing_out_of_a_session_that_had_already_expired_stores_nothing_and_tells_the_sink_nothing(bool absolute)
    {
        // Docs (shared-signals.md, "When"): idle and absolute expiry send nothing, the tokens' own exp covers them; a
        // sign-out that comes after the expiry ends nothing more, so it must not send a SET either.
        var options = new TokenServiceOptions { Issuer = Crafted.ServiceIssuer };
        var opened = await OpenAsync("eve");
        _time.Advance((absolute ? options.SessionAbsoluteLifetime : options.SessionIdleTimeout) + TimeSpan.FromSeconds(1));

        Assert.False(await _sessions.RevokeSessionAsync(opened.SessionId, SessionEndReason.ClientRevocation, default));

        Assert.Empty(_sink.Calls);
        Assert.Null((await _store.GetSessionAsync(opened.SessionId, default))!.RevokedAt);
    }

    private SessionService New(ISessionStore store, ISessionEndedSink sink, TokenServiceOptions? options = null) =>
        new(store, Options.Create(options ?? new TokenServiceOptions { Issuer = Crafted.ServiceIssuer }), _time, NullLogger<SessionService>.Instance, TestMetrics.Create(), audit: null, ended: sink);

    private async Task<SessionRecord> OpenAsync(string user)
    {
        _time.Advance(TimeSpan.FromSeconds(1));
        return (await _sessions.OpenAsync(Request(user), TestSessions.IssueAsync, default)).Session;
    }

    private static OpenSessionRequest Request(string user) => new(user, user, "web", "a", ["api://orders"], null, null, []);


    private sealed record Call(IReadOnlyList<SessionRecord> Sessions, SessionEndReason Reason, DateTimeOffset EndedAt, bool AllEndedInStore);

    /// <summary>Records each call and whether, at that moment, the store already held every named session as ended.</summary>
    private sealed class RecordingSink(InMemorySessionStore store) : ISessionEndedSink
    {
        public List<Call> Calls { get; } = [];

        public void SessionsEnded(IReadOnlyList<SessionRecord> sessions, SessionEndReason reason, DateTimeOffset endedAt)
        {
            var stored = sessions.Select(s => store.GetSessionAsync(s.SessionId, default)).ToList();
            var allEnded = stored.All(read => read.IsCompletedSuccessfully && read.Result is { RevokedAt: not null } record && record.RevocationReason == reason.Code);
            Calls.Add(new Call([.. sessions], reason, endedAt, allEnded));
        }
    }

    /// <summary>
    /// The in-memory store whose next write, while <see cref="LoseNextAnswer"/>, is applied but answered with a conflict:
    /// what a client sees when its request succeeded, the answer was lost and its retry found its own change.
    /// </summary>
    private sealed class LostAnswerStore(InMemorySessionStore inner) : ISessionStore
    {
        public bool LoseNextAnswer { get; set; }

        public int AnswersLost { get; private set; }

        public ValueTask<SessionRecord?> GetSessionAsync(string sessionId, CancellationToken cancellationToken) => inner.GetSessionAsync(sessionId, cancellationToken);

        public ValueTask<UserSessions> GetUserSessionsAsync(string userId, CancellationToken cancellationToken) => inner.GetUserSessionsAsync(userId, cancellationToken);

        public async ValueTask<StoreWriteResult> ReplaceSessionAsync(SessionRecord updated, CancellationToken cancellationToken)
        {
            var result = await inner.ReplaceSessionAsync(updated, cancellationToken);
            return result.Status == StoreWriteStatus.Success && Lose() ? StoreWriteResult.Conflict : result;
        }

        public async ValueTask<StoreWriteStatus> CommitAsync(UserSessionsChange change, CancellationToken cancellationToken)
        {
            var status = await inner.CommitAsync(change, cancellationToken);
            return status == StoreWriteStatus.Success && Lose() ? StoreWriteStatus.Conflict : status;
        }

        private bool Lose()
        {
            if (!LoseNextAnswer)
            {
                return false;
            }

            LoseNextAnswer = false;
            AnswersLost++;
            return true;
        }
    }

    /// <summary>The in-memory store whose writes fail (a storage outage) while <see cref="Fail"/>.</summary>
    private sealed class FailingStore(InMemorySessionStore inner) : ISessionStore
    {
        public bool Fail { get; set; }

        public ValueTask<SessionRecord?> GetSessionAsync(string sessionId, CancellationToken cancellationToken) => inner.GetSessionAsync(sessionId, cancellationToken);

        public ValueTask<UserSessions> GetUserSessionsAsync(string userId, CancellationToken cancellationToken) => inner.GetUserSessionsAsync(userId, cancellationToken);

        public ValueTask<StoreWriteResult> ReplaceSessionAsync(SessionRecord updated, CancellationToken cancellationToken) =>
            Fail ? throw new DependencyUnavailableException("storage", "down") : inner.ReplaceSessionAsync(updated, cancellationToken);

        public ValueTask<StoreWriteStatus> CommitAsync(UserSessionsChange change, CancellationToken cancellationToken) =>
            Fail ? throw new DependencyUnavailableException("storage", "down") : inner.CommitAsync(change, cancellationToken);
    }
}
