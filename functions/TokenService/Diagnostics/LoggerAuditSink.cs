using Microsoft.Extensions.Logging;
using TokenService.Events;
using TokenService.Sessions;

namespace TokenService.Diagnostics;

/// <summary>
/// Writes each audit event as one structured log record on the dedicated <see cref="Category"/> category, with the
/// kind's stable event id and the same named fields for every kind (AuditEvent, Time, Actor, UserId, SessionId,
/// ClientId, Outcome, Reason), so that a query over the category reads one schema. Exported like every log: as
/// Application Insights traces (customDimensions) or OTLP log records.
/// </summary>
public sealed partial class LoggerAuditSink(ILoggerFactory loggers, TimeProvider time) : IAuditSink
{
    /// <summary>The log category of the audit trail.</summary>
    public const string Category = "TokenService.Audit";

    /// <summary>The longest text of one audit field, escapes included.</summary>
    public const int FieldMaxLength = 2 * UserIds.MaxLength;

    private readonly ILogger _logger = loggers.CreateLogger(Category);

    public void Record(in AuditEvent e)
    {
        if (!_logger.IsEnabled(LogLevel.Information))
        {
            return;
        }

        // Every field goes through LogValue, as event text does (OWASP Logging Cheat Sheet; CWE-117): a user id, a
        // client id or an event's text can hold CR, LF, U+2028 or a bidirectional override, and a log line must not
        // be forgeable from them. The bound fits the longest valid user id (UserIds.MaxLength) escaped twice over.
        var at = time.GetUtcNow();
        var actor = LogValue.Of(e.Actor, FieldMaxLength);
        var user = LogValue.Of(e.SubjectUserId, FieldMaxLength);
        var session = LogValue.Of(e.SessionId, FieldMaxLength);
        var client = LogValue.Of(e.ClientId, FieldMaxLength);
        var outcome = LogValue.Of(e.Outcome, FieldMaxLength);
        var reason = LogValue.Of(e.Reason, FieldMaxLength);
        switch (e.Kind)
        {
            case AuditEventKind.SessionOpened:
                SessionOpened(_logger, nameof(AuditEventKind.SessionOpened), at, actor, user, session, client, outcome, reason);
                break;
            case AuditEventKind.RefreshTokenReuse:
                RefreshTokenReuse(_logger, nameof(AuditEventKind.RefreshTokenReuse), at, actor, user, session, client, outcome, reason);
                break;
            case AuditEventKind.SessionRevoked:
                SessionRevoked(_logger, nameof(AuditEventKind.SessionRevoked), at, actor, user, session, client, outcome, reason);
                break;
            case AuditEventKind.AccessTokenRevoked:
                AccessTokenRevoked(_logger, nameof(AuditEventKind.AccessTokenRevoked), at, actor, user, session, client, outcome, reason);
                break;
            case AuditEventKind.AdminLogout:
                AdminLogout(_logger, nameof(AuditEventKind.AdminLogout), at, actor, user, session, client, outcome, reason);
                break;
            case AuditEventKind.IdpEventRevocation:
                IdpEventRevocation(_logger, nameof(AuditEventKind.IdpEventRevocation), at, actor, user, session, client, outcome, reason);
                break;
            case AuditEventKind.KeyRotated:
                KeyRotated(_logger, nameof(AuditEventKind.KeyRotated), at, actor, user, session, client, outcome, reason);
                break;
            case AuditEventKind.KeyRevoked:
                KeyRevoked(_logger, nameof(AuditEventKind.KeyRevoked), at, actor, user, session, client, outcome, reason);
                break;
        }
    }

    // One message per kind with the same fields; the event ids are AuditEventKind's numbers.
    private const string Fields = " Actor={Actor} UserId={UserId} SessionId={SessionId} ClientId={ClientId} Outcome={Outcome} Reason={Reason} Time={Time}";

    [LoggerMessage(EventId = (int)AuditEventKind.SessionOpened, EventName = nameof(AuditEventKind.SessionOpened), Level = LogLevel.Information, Message = "Audit {AuditEvent}:" + Fields)]
    private static partial void SessionOpened(ILogger logger, string auditEvent, DateTimeOffset time, string actor, string userId, string sessionId, string clientId, string outcome, string reason);

    [LoggerMessage(EventId = (int)AuditEventKind.RefreshTokenReuse, EventName = nameof(AuditEventKind.RefreshTokenReuse), Level = LogLevel.Warning, Message = "Audit {AuditEvent}:" + Fields)]
    private static partial void RefreshTokenReuse(ILogger logger, string auditEvent, DateTimeOffset time, string actor, string userId, string sessionId, string clientId, string outcome, string reason);

    [LoggerMessage(EventId = (int)AuditEventKind.SessionRevoked, EventName = nameof(AuditEventKind.SessionRevoked), Level = LogLevel.Information, Message = "Audit {AuditEvent}:" + Fields)]
    private static partial void SessionRevoked(ILogger logger, string auditEvent, DateTimeOffset time, string actor, string userId, string sessionId, string clientId, string outcome, string reason);

    [LoggerMessage(EventId = (int)AuditEventKind.AccessTokenRevoked, EventName = nameof(AuditEventKind.AccessTokenRevoked), Level = LogLevel.Information, Message = "Audit {AuditEvent}:" + Fields)]
    private static partial void AccessTokenRevoked(ILogger logger, string auditEvent, DateTimeOffset time, string actor, string userId, string sessionId, string clientId, string outcome, string reason);

    [LoggerMessage(EventId = (int)AuditEventKind.AdminLogout, EventName = nameof(AuditEventKind.AdminLogout), Level = LogLevel.Warning, Message = "Audit {AuditEvent}:" + Fields)]
    private static partial void AdminLogout(ILogger logger, string auditEvent, DateTimeOffset time, string actor, string userId, string sessionId, string clientId, string outcome, string reason);

    [LoggerMessage(EventId = (int)AuditEventKind.IdpEventRevocation, EventName = nameof(AuditEventKind.IdpEventRevocation), Level = LogLevel.Information, Message = "Audit {AuditEvent}:" + Fields)]
    private static partial void IdpEventRevocation(ILogger logger, string auditEvent, DateTimeOffset time, string actor, string userId, string sessionId, string clientId, string outcome, string reason);

    [LoggerMessage(EventId = (int)AuditEventKind.KeyRotated, EventName = nameof(AuditEventKind.KeyRotated), Level = LogLevel.Information, Message = "Audit {AuditEvent}:" + Fields)]
    private static partial void KeyRotated(ILogger logger, string auditEvent, DateTimeOffset time, string actor, string userId, string sessionId, string clientId, string outcome, string reason);

    [LoggerMessage(EventId = (int)AuditEventKind.KeyRevoked, EventName = nameof(AuditEventKind.KeyRevoked), Level = LogLevel.Warning, Message = "Audit {AuditEvent}:" + Fields)]
    private static partial void KeyRevoked(ILogger logger, string auditEvent, DateTimeOffset time, string actor, string userId, string sessionId, string clientId, string outcome, string reason);
}
