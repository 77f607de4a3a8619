namespace TokenService.Sessions;

/// <summary>
/// Told of every session that a committed change ended: sign-out, revoke-others, a client's refresh-token revocation,
/// an admin's force logout, reuse detection, the per-user session limit, IdP events. <see cref="SessionService"/> calls
/// it only after the store accepted the change (a failed or conflicting commit tells nothing), once per commit, never
/// for idle or absolute expiry (nothing is committed then: the tokens' own <c>exp</c> covers them). Optional: with none
/// registered nothing is done. Implementations must return at once (no I/O: queue the work) and must not throw, since
/// the change is already committed and the request that made it must still be answered.
/// </summary>
public interface ISessionEndedSink
{
    /// <param name="sessions">The sessions the commit ended (their id, subject and audiences as stored).</param>
    /// <param name="reason">Why they ended (one reason per commit).</param>
    /// <param name="endedAt">When the change was committed (the <c>RevokedAt</c> it wrote).</param>
    void SessionsEnded(IReadOnlyList<SessionRecord> sessions, SessionEndReason reason, DateTimeOffset endedAt);
}
