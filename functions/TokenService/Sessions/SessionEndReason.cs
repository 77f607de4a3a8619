namespace TokenService.Sessions;

/// <summary>What ended a session.</summary>
public enum SessionEndKind
{
    /// <summary>The user ended one of their sessions (<c>DELETE /sessions/{id}</c>).</summary>
    Logout,

    /// <summary>The user ended every other session of theirs (revoke-others).</summary>
    OtherSessionsEndedByUser,

    /// <summary>The session's client revoked its refresh token (RFC 7009 §2.1).</summary>
    ClientRevocation,

    /// <summary>An admin client forced the logout of every session of the user.</summary>
    AdminLogout,

    /// <summary>A rotated refresh token was presented again (RFC 9700 §4.14.2).</summary>
    RefreshTokenReuse,

    /// <summary>A newer session of the user took its place under the per-user session limit.</summary>
    SessionLimit,

    /// <summary>An IdP event (our schema, Microsoft Graph, Auth0, a Security Event Token) about the user.</summary>
    IdpEvent,

    /// <summary>No issue or refresh within the idle timeout. Computed from the record, never written to it.</summary>
    IdleTimeout,

    /// <summary>The absolute session lifetime passed. Computed from the record, never written to it.</summary>
    AbsoluteLifetime,
}

/// <summary>Who ended a session: the audit trail's actor and, for the session-revoked events, the initiator.</summary>
public enum SessionEndActor
{
    /// <summary>The signed-in user, through their own session.</summary>
    User,

    /// <summary>The OAuth client the session belongs to.</summary>
    Client,

    /// <summary>An admin client.</summary>
    Admin,

    /// <summary>The identity provider, through an event.</summary>
    IdentityProvider,

    /// <summary>The service's own rules (reuse detection, session limit, timeouts).</summary>
    System,
}

/// <summary>
/// Why a session ended: its kind, its actor and the code the stores keep in <see cref="SessionRecord.RevocationReason"/>
/// and that logs, audit records and metric tags show (docs/operations.md). The codes are today's strings and must not
/// change: stored sessions, dashboards and users read them. Every reason is one of the static instances below, so that
/// ending a session (reuse detection on the refresh path among them) allocates nothing for its reason, and
/// <see cref="TryParse"/> maps a stored code back to the same instance.
/// </summary>
public sealed class SessionEndReason
{
    public static readonly SessionEndReason Logout = new(SessionEndKind.Logout, SessionEndActor.User, "logout");
    public static readonly SessionEndReason OtherSessionsEndedByUser = new(SessionEndKind.OtherSessionsEndedByUser, SessionEndActor.User, "revoked_by_user");
    public static readonly SessionEndReason ClientRevocation = new(SessionEndKind.ClientRevocation, SessionEndActor.Client, "revoked_by_client");
    public static readonly SessionEndReason AdminLogout = new(SessionEndKind.AdminLogout, SessionEndActor.Admin, "revoked_by_admin");
    public static readonly SessionEndReason RefreshTokenReuse = new(SessionEndKind.RefreshTokenReuse, SessionEndActor.System, "refresh_token_reuse");
    public static readonly SessionEndReason SessionLimit = new(SessionEndKind.SessionLimit, SessionEndActor.System, "session_limit");
    public static readonly SessionEndReason IdleTimeout = new(SessionEndKind.IdleTimeout, SessionEndActor.System, "idle_timeout");
    public static readonly SessionEndReason AbsoluteLifetime = new(SessionEndKind.AbsoluteLifetime, SessionEndActor.System, "absolute_lifetime");

    // IdP events: "source:type". The source is the kind of IdP feed (our generic schema "idp", Microsoft Graph, Auth0,
    // OpenID Shared Signals "ssf"), never text from the event, so that metric tags stay a bounded set.
    public static readonly SessionEndReason IdpAccountDisabled = Idp("idp", "account-disabled");
    public static readonly SessionEndReason IdpAccountDeleted = Idp("idp", "account-deleted");
    public static readonly SessionEndReason IdpCredentialChanged = Idp("idp", "credential-changed");
    public static readonly SessionEndReason IdpSessionsRevoked = Idp("idp", "sessions-revoked");
    public static readonly SessionEndReason GraphUserDeleted = Idp("graph", "user-deleted");
    public static readonly SessionEndReason GraphAccountDisabled = Idp("graph", "account-disabled");
    public static readonly SessionEndReason Auth0UserDeleted = Idp("auth0", "user-deleted");
    public static readonly SessionEndReason Auth0PasswordChanged = Idp("auth0", "password-changed");
    public static readonly SessionEndReason Auth0UserBlocked = Idp("auth0", "user-blocked");
    public static readonly SessionEndReason SsfSessionRevoked = Idp("ssf", "session-revoked");
    public static readonly SessionEndReason SsfCredentialChange = Idp("ssf", "credential-change");
    public static readonly SessionEndReason SsfAccountDisabled = Idp("ssf", "account-disabled");
    public static readonly SessionEndReason SsfAccountPurged = Idp("ssf", "account-purged");
    public static readonly SessionEndReason SsfCredentialCompromise = Idp("ssf", "credential-compromise");

    /// <summary>Every reason, each once.</summary>
    public static IReadOnlyList<SessionEndReason> All { get; } =
    [
        Logout, OtherSessionsEndedByUser, ClientRevocation, AdminLogout, RefreshTokenReuse, SessionLimit, IdleTimeout, AbsoluteLifetime,
        IdpAccountDisabled, IdpAccountDeleted, IdpCredentialChanged, IdpSessionsRevoked, GraphUserDeleted, GraphAccountDisabled,
        Auth0UserDeleted, Auth0PasswordChanged, Auth0UserBlocked,
        SsfSessionRevoked, SsfCredentialChange, SsfAccountDisabled, SsfAccountPurged, SsfCredentialCompromise,
    ];

    private static readonly Dictionary<string, SessionEndReason> ByCode = All.ToDictionary(r => r.Code, StringComparer.Ordinal);

    private SessionEndReason(SessionEndKind kind, SessionEndActor actor, string code, string? idpSource = null, string? idpEventType = null)
    {
        Kind = kind;
        Actor = actor;
        Code = code;
        IdpSource = idpSource;
        IdpEventType = idpEventType;
        MetricTag = idpSource is null ? code : "idp_event:" + idpSource;
    }

    public SessionEndKind Kind { get; }

    public SessionEndActor Actor { get; }

    /// <summary>The stored and shown form: <c>session_limit</c>, <c>idp:account-disabled</c> …</summary>
    public string Code { get; }

    /// <summary>For an IdP event: the feed it came through (<c>idp</c>, <c>graph</c>, <c>auth0</c>, <c>ssf</c>); else null.</summary>
    public string? IdpSource { get; }

    /// <summary>For an IdP event: what the IdP said (<c>account-disabled</c>, <c>user-deleted</c> …); else null.</summary>
    public string? IdpEventType { get; }

    /// <summary>
    /// The <c>tokenservice.reason</c> tag of <c>tokenservice.sessions.revoked</c>: the code, or <c>idp_event:&lt;source&gt;</c>
    /// for IdP events (their type has a counter of its own), computed once.
    /// </summary>
    public string MetricTag { get; }

    /// <summary>
    /// The audit trail's actor (docs/operations.md, "Audit events"): <c>client:&lt;id&gt;</c> of the session's client for
    /// a client revocation, else <c>user</c>, <c>admin</c>, <c>idp</c> or <c>system</c>.
    /// </summary>
    public string AuditActor(string sessionClientId) => Actor switch
    {
        SessionEndActor.Client => Diagnostics.AuditEvent.ClientActor(sessionClientId),
        SessionEndActor.User => "user",
        SessionEndActor.Admin => "admin",
        SessionEndActor.IdentityProvider => "idp",
        _ => Diagnostics.AuditEvent.SystemActor,
    };

    /// <summary>The reason a stored code names (<see cref="SessionRecord.RevocationReason"/>), or false for null or an unknown code.</summary>
    public static bool TryParse(string? code, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out SessionEndReason? reason)
    {
        reason = null;
        return code is not null && ByCode.TryGetValue(code, out reason);
    }

    /// <summary>
    /// Why <paramref name="session"/> is not live at <paramref name="now"/>: its stored revocation reason, else the
    /// absolute lifetime or the idle timeout it passed; null while it is live, or for a revocation code this version
    /// does not know.
    /// </summary>
    public static SessionEndReason? Of(SessionRecord session, DateTimeOffset now)
    {
        if (session.RevokedAt is not null)
        {
            return TryParse(session.RevocationReason, out var stored) ? stored : null;
        }

        return now >= session.AbsoluteExpiresAt ? AbsoluteLifetime
            : now >= session.IdleExpiresAt ? IdleTimeout
            : null;
    }

    public override string ToString() => Code;

    private static SessionEndReason Idp(string source, string type) =>
        new(SessionEndKind.IdpEvent, SessionEndActor.IdentityProvider, source + ":" + type, source, type);
}
