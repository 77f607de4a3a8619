namespace TokenService.Sessions;

/// <summary>
/// Port for session state. Implementations: <see cref="InMemorySessionStore"/> (embedded default) and
/// Table Storage (one partition per user). Conflicts are reported as <see cref="StoreWriteStatus"/>;
/// an unreachable, throttling or timing-out store throws <see cref="DependencyUnavailableException"/>.
/// Round trips: <see cref="GetSessionAsync"/> and <see cref="ReplaceSessionAsync"/> are one operation each
/// (refresh = one read + one conditional write, or the write alone from <see cref="SessionStateCache"/>); <see cref="GetUserIndexAsync"/> is one point read
/// (skipped by a sign-in that <see cref="SessionStateCache"/> holds the user's index for),
/// <see cref="GetUserSessionsAsync"/> one partition query and <see cref="CommitAsync"/> one atomic batch.
/// </summary>
public interface ISessionStore
{
    /// <summary>Point read by session id (the id locates its user's partition). Null when absent.</summary>
    ValueTask<SessionRecord?> GetSessionAsync(string sessionId, CancellationToken cancellationToken);

    /// <summary>
    /// The user's index by point read: the partition version and the sessions that may be live (see
    /// <see cref="UserSessionIndex"/>), so that a sign-in with room under the per-user limit needs no partition query.
    /// Its sessions are null when the store keeps no index for the user (a row written without one, by an earlier
    /// version or a change with no <see cref="UserSessionsChange.Index"/>): then <see cref="GetUserSessionsAsync"/>
    /// decides. A store that keeps no index at all leaves this default.
    /// </summary>
    ValueTask<UserSessionIndex> GetUserIndexAsync(string userId, CancellationToken cancellationToken) =>
        ValueTask.FromResult(UserSessionIndex.None);

    /// <summary>Every stored record of the user (live, revoked and expired) and the ID tokens redeemed, with the partition version.</summary>
    ValueTask<UserSessions> GetUserSessionsAsync(string userId, CancellationToken cancellationToken);

    /// <summary>
    /// Replaces one session if its stored ETag equals <paramref name="updated"/>.ETag; returns the stored
    /// record with its new ETag. Does not change the user's version (rotation does not affect the limit).
    /// </summary>
    ValueTask<StoreWriteResult> ReplaceSessionAsync(SessionRecord updated, CancellationToken cancellationToken);

    /// <summary>Applies <paramref name="change"/> atomically, or nothing of it (see <see cref="UserSessionsChange"/>).</summary>
    ValueTask<StoreWriteStatus> CommitAsync(UserSessionsChange change, CancellationToken cancellationToken);

    /// <summary>
    /// <see cref="CommitAsync"/>, also giving back, when it succeeded, the ETags the store gave the change's inserted
    /// sessions and the user's new version, so that the caller can write the session or commit to the user again
    /// without reading first (<see cref="SessionStateCache"/>). A store that cannot tell them leaves this default, which
    /// gives none.
    /// </summary>
    async ValueTask<StoreCommitResult> CommitReturningVersionsAsync(UserSessionsChange change, CancellationToken cancellationToken) =>
        new(await CommitAsync(change, cancellationToken));
}
