using TokenService.Diagnostics;

namespace TokenService.Sessions;

/// <summary>Metrics and audit records of session changes, called once a change is committed (docs/operations.md).</summary>
public sealed partial class SessionService
{
    private void RecordOpened(SessionRecord session, IReadOnlyList<SessionRecord> evicted)
    {
        _metrics.Evicted(session.ClientId, evicted.Count);
        _audit?.Record(new AuditEvent(
            AuditEventKind.SessionOpened, AuditEvent.ClientActor(session.ClientId), "success", session.UserId, session.SessionId, session.ClientId, "token_exchange"));
        RecordRevoked(evicted, SessionEndReason.SessionLimit);
    }

    private void RecordReuse(SessionRecord session)
    {
        _metrics.ReuseDetected(session.ClientId);
        _audit?.Record(new AuditEvent(
            AuditEventKind.RefreshTokenReuse, AuditEvent.ClientActor(session.ClientId), "session_revoked", session.UserId, session.SessionId, session.ClientId, "refresh_token_reuse"));
    }

    /// <summary>One audit record per ended session; the reason names its actor.</summary>
    private void RecordRevoked(IReadOnlyList<SessionRecord> sessions, SessionEndReason reason)
    {
        _metrics.SessionsEnded(sessions.Count, reason);
        if (_audit is null)
        {
            return;
        }

        foreach (var session in sessions)
        {
            _audit.Record(new AuditEvent(
                AuditEventKind.SessionRevoked, reason.AuditActor(session.ClientId), "revoked", session.UserId, session.SessionId, session.ClientId, reason.Code));
        }
    }
}
