namespace TokenService.Diagnostics;

/// <summary>
/// The kinds of security audit event. The numbers are the events' stable log event ids (docs/operations.md, "Audit
/// events"): never renumber one, add new kinds at the end.
/// </summary>
public enum AuditEventKind
{
    /// <summary>A token exchange opened a session.</summary>
    SessionOpened = 9001,

    /// <summary>A rotated refresh token was presented again; the session was revoked (RFC 9700 §4.14.2).</summary>
    RefreshTokenReuse = 9002,

    /// <summary>One session ended before its time (client revocation, reuse, per-user limit, admin, IdP event).</summary>
    SessionRevoked = 9003,

    /// <summary>A client revoked one of its access tokens (RFC 7009): its jti is denied until it expires.</summary>
    AccessTokenRevoked = 9004,

    /// <summary>An admin client forced the logout of every session of a user.</summary>
    AdminLogout = 9005,

    /// <summary>An IdP event ended a user's sessions.</summary>
    IdpEventRevocation = 9006,

    /// <summary>Signing keys changed: created, activated ahead of schedule, removed (scheduled check or rotate-now).</summary>
    KeyRotated = 9007,

    /// <summary>An admin revoked a signing key (compromise response).</summary>
    KeyRevoked = 9008,
}

/// <summary>
/// One security audit record. Identifiers only: a user id, a session id, a client id, a key id, a jti. Never a token,
/// a refresh token, a client secret or an ID token: the record names what happened to them, not their text.
/// </summary>
/// <param name="Kind">What happened; its number is the stable event id.</param>
/// <param name="Actor">Who did it: <c>client:{id}</c>, <c>admin:{id}</c>, <c>idp:{source}</c>, or <c>system</c> (the service's own rules and schedules).</param>
/// <param name="Outcome">A short stable word: success, revoked, no_change, refused …</param>
/// <param name="SubjectUserId">The user the event is about, when there is one.</param>
/// <param name="SessionId">The session concerned, when there is one.</param>
/// <param name="ClientId">The OAuth client concerned, when there is one.</param>
/// <param name="Reason">Why: the revocation reason constant, the key change summary, the IdP event's kind.</param>
public readonly record struct AuditEvent(
    AuditEventKind Kind,
    string Actor,
    string Outcome,
    string? SubjectUserId = null,
    string? SessionId = null,
    string? ClientId = null,
    string? Reason = null)
{
    public const string SystemActor = "system";

    public static string ClientActor(string clientId) => "client:" + clientId;

    public static string AdminActor(string clientId) => "admin:" + clientId;
}

/// <summary>
/// Port for the security audit trail. The default (<see cref="LoggerAuditSink"/>) writes structured logs on the
/// <see cref="LoggerAuditSink.Category"/> category, which the hosts export with their other logs (Application Insights,
/// OTLP). A sink stamps the time itself and must not throw: auditing never fails the operation it records.
/// </summary>
public interface IAuditSink
{
    void Record(in AuditEvent auditEvent);
}
