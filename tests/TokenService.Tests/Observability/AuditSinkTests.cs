using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using TokenService.Diagnostics;
using TokenService.Tests.Infrastructure;

namespace TokenService.Tests.Observability;

/// <summary>
/// The audit sink escapes every field the way event text is (LogValue): no id, client id, reason or
/// actor can forge a log line (CWE-117) or read differently from what it is (bidirectional overrides).
/// </summary>
public sealed class AuditSinkTests
{
    [Fact]
    public void Every_audit_field_escapes_line_breaks_separators_bidi_overrides_and_del()
    {
        var logs = new CapturingLoggerProvider();
        using var factory = LoggerFactory.Create(b => b.AddProvider(logs).SetMinimumLevel(LogLevel.Trace));
        var sink = new LoggerAuditSink(factory, new FakeTimeProvider(new DateTimeOffset(2030, 1, 2, 3, 4, 5, TimeSpan.Zero)));
        const string Forged = "x\r\nAudit SessionOpened: Actor=admin:ops\u2028\u202e\u007f\u0085";

        sink.Record(new AuditEvent(AuditEventKind.AdminLogout, "admin:" + Forged, "success" + Forged, Forged, Forged, Forged, Forged));

        var entry = Assert.Single(logs.Entries, e => e.Category == LoggerAuditSink.Category);
        Assert.DoesNotContain(entry.Message, c => char.IsControl(c) || c is '\u2028' or '\u202e');
        const string Escaped = "x\\u000d\\u000aAudit SessionOpened: Actor=admin:ops\\u2028\\u202e\\u007f\\u0085";
        foreach (var (field, expected) in new[]
        {
            ("Actor", "admin:" + Escaped), ("Outcome", "success" + Escaped), ("UserId", Escaped), ("SessionId", Escaped), ("ClientId", Escaped), ("Reason", Escaped),
        })
        {
            Assert.Equal(expected, entry.Values.Single(v => v.Key == field).Value as string);
        }
    }

    [Fact]
    public void The_longest_valid_user_id_is_audited_whole_and_longer_text_is_cut()
    {
        var logs = new CapturingLoggerProvider();
        using var factory = LoggerFactory.Create(b => b.AddProvider(logs).SetMinimumLevel(LogLevel.Trace));
        var sink = new LoggerAuditSink(factory, new FakeTimeProvider());
        var longest = new string('u', TokenService.Sessions.UserIds.MaxLength);

        sink.Record(new AuditEvent(AuditEventKind.AdminLogout, "admin:ops", "success", longest, Reason: new string('r', 10_000)));

        var entry = Assert.Single(logs.Entries, e => e.Category == LoggerAuditSink.Category);
        Assert.Equal(longest, entry.Values.Single(v => v.Key == "UserId").Value as string);
        Assert.Equal(LoggerAuditSink.FieldMaxLength, (entry.Values.Single(v => v.Key == "Reason").Value as string)!.Length);
    }
}
