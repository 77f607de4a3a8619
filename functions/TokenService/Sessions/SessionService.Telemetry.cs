using TokenService.Diagnostics;

namespace TokenService.Sessions;

/// <summary>Metrics and audit records of session changes, called once a change is committed (docs/operations.md).</summary>
public sealed partial class SessionService
{
    private void RecordOpened(SessionRecord session, IReadOnlyList<SessionRecord> evicted, DateTimeOffset now)
    {
        _metrics.Evicted(session.ClientId, evicted.Count);
        _audit?.Record(new AuditEvent(
            AuditEventKind.SessionOpened, AuditEvent.ClientActor(session.ClientId), "success", session.UserId, session.SessionId, session.ClientId, "token_exchange"));
        RecordRevoked(evicted, SessionEndReason.SessionLimit, now);
    }

    private void RecordReuse(SessionRecord session)
    {
        _metrics.ReuseDetected(session.ClientId);
        _audit?.Record(new AuditEvent(
            AuditEventKind.RefreshTokenReuse, AuditEvent.ClientActor(session.ClientId), "session_revoked", session.UserId, session.SessionId, session.ClientId, "refresh_token_reuse"));
    }

    /// <summary>
    /// One audit record per ended session (the reason names its actor), then the <see cref="ISessionEndedSink"/>: called
    /// only here, after the commit that ended <paramref name="sessions"/> succeeded, so that nothing is ever told of an
    /// end that was not stored.
    /// </summary>
    private void RecordRevoked(IReadOnlyList<SessionRecord> sessions, SessionEndReason reason, DateTimeOffset endedAt)
    {
        _metrics.SessionsEnded(sessions.Count, reason);
        if (_audit is not null)
        {
            foreach (var session in sessions)
            {
                _audit.Record(new AuditEvent(
                    AuditEventKind.SessionRevoked, reason.AuditActor(session.ClientId), "revoked", session.UserId, session.SessionId, session.ClientId, reason.Code));
            }
        }

        if (sessions.Count > 0)
        {
            _ended?.SessionsEnded(sessions, reason, endedAt);
        }
    }
}
