using TokenService.Sessions;

namespace TokenService.Tests.Infrastructure;

/// <summary>
/// The in-memory store counting what the session service asks of it (reads by kind, writes and their conflicts), for
/// the tests that prove how many operations a path costs. It passes on the commit's ETags and version, and it can answer
/// one commit that landed with a conflict (a lost answer), fail commits, hold commits until several race, and answer with
/// the times a store began keeping indexes that it is given.
/// </summary>
internal sealed class CountingSessionStore(InMemorySessionStore inner) : ISessionStore
{
    private int _sessionReads;
    private int _replaces;
    private int _replaceConflicts;
    private int _indexReads;
    private int _partitionReads;
    private int _commits;
    private int _commitConflicts;
    private TaskCompletionSource? _held;
    private int _toHold;

    public int SessionReads => _sessionReads;

    public int Replaces => _replaces;

    public int ReplaceConflicts => _replaceConflicts;

    public int IndexReads => _indexReads;

    public int PartitionReads => _partitionReads;

    /// <summary>Commits that landed, a lost answer's included.</summary>
    public int Commits => _commits;

    /// <summary>Commits answered with a conflict, a lost answer's included.</summary>
    public int CommitConflicts => _commitConflicts;

    /// <summary>The next commit that lands is answered as a conflict (a retried request whose first try landed).</summary>
    public bool LoseNextCommitAnswer { get; set; }

    /// <summary>Commits throw as from a store that is down.</summary>
    public bool FailCommits { get; set; }

    public DateTimeOffset IndexedSinceForMissingRows { get; init; } = DateTimeOffset.MinValue;

    public DateTimeOffset IndexedSinceForRows { get; init; } = DateTimeOffset.MinValue;

    /// <summary>The record as stored now.</summary>
    public SessionRecord Stored(string sessionId) => inner.GetSessionAsync(sessionId, default).Result!;

    /// <summary>The next <paramref name="commits"/> commits wait until the last of them arrives, then all go on.</summary>
    public void HoldCommitsUntil(int commits)
    {
        _toHold = commits;
        _held = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    public void Reset()
    {
        _sessionReads = 0;
        _replaces = 0;
        _replaceConflicts = 0;
        _indexReads = 0;
        _partitionReads = 0;
        _commits = 0;
        _commitConflicts = 0;
    }

    public ValueTask<SessionRecord?> GetSessionAsync(string sessionId, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _sessionReads);
        return inner.GetSessionAsync(sessionId, cancellationToken);
    }

    public async ValueTask<UserSessionIndex> GetUserIndexAsync(string userId, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _indexReads);
        var index = await inner.GetUserIndexAsync(userId, cancellationToken);
        return index with { IndexedSince = index.Version is null ? IndexedSinceForMissingRows : IndexedSinceForRows };
    }

    public ValueTask<UserSessions> GetUserSessionsAsync(string userId, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _partitionReads);
        return inner.GetUserSessionsAsync(userId, cancellationToken);
    }

    public async ValueTask<StoreWriteResult> ReplaceSessionAsync(SessionRecord updated, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _replaces);
        var result = await inner.ReplaceSessionAsync(updated, cancellationToken);
        if (result.Status == StoreWriteStatus.Conflict)
        {
            Interlocked.Increment(ref _replaceConflicts);
        }

        return result;
    }

    public async ValueTask<StoreWriteStatus> CommitAsync(UserSessionsChange change, CancellationToken cancellationToken) =>
        (await CommitReturningVersionsAsync(change, cancellationToken)).Status;

    public async ValueTask<StoreCommitResult> CommitReturningVersionsAsync(UserSessionsChange change, CancellationToken cancellationToken)
    {
        if (FailCommits)
        {
            throw new DependencyUnavailableException("storage", "down");
        }

        if (_held is { } held && Interlocked.Decrement(ref _toHold) >= 0)
        {
            if (Volatile.Read(ref _toHold) <= 0)
            {
                held.TrySetResult();
            }

            // Bounded, so that a sign-in that never commits fails the test instead of hanging it.
            await held.Task.WaitAsync(TimeSpan.FromSeconds(30), cancellationToken);
        }

        var result = await inner.CommitReturningVersionsAsync(change, cancellationToken);
        if (result.Status == StoreWriteStatus.Success)
        {
            Interlocked.Increment(ref _commits);
            if (LoseNextCommitAnswer)
            {
                LoseNextCommitAnswer = false;
                result = new StoreCommitResult(StoreWriteStatus.Conflict);
            }
        }

        if (result.Status == StoreWriteStatus.Conflict)
        {
            Interlocked.Increment(ref _commitConflicts);
        }

        return result;
    }
}
