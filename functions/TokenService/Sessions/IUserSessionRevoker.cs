namespace TokenService.Sessions;

/// <summary>
/// Ends every live session of a user (admin force-logout, IdP events). Idempotent: revoking a user with
/// no live sessions succeeds and returns 0. Store faults throw <see cref="DependencyUnavailableException"/>
/// with nothing half-written (the change is one atomic commit per user).
/// </summary>
public interface IUserSessionRevoker
{
    /// <param name="userId">The user as <c>Idp:UserIdClaim</c> names them.</param>
    /// <param name="reason">Why they end: its code is recorded on the sessions (e.g. "idp:account-disabled"), its kind and actor go to the audit trail.</param>
    /// <param name="exceptSessionId">A session to keep (revoke-others), or null.</param>
    /// <param name="createdBefore">
    /// Only sessions opened before this instant end (an IdP event's time), so that a late or redelivered
    /// event never ends a session the user opened after it; null ends all.
    /// </param>
    /// <param name="cancellationToken">The request's budget.</param>
    /// <returns>How many sessions were ended.</returns>
    Task<int> RevokeAllAsync(string userId, SessionEndReason reason, string? exceptSessionId, DateTimeOffset? createdBefore, CancellationToken cancellationToken);
}
