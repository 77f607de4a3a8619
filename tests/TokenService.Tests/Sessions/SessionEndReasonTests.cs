using TokenService.Events;
using TokenService.Sessions;

namespace TokenService.Tests.Sessions;

/// <summary>
/// The session-end reasons keep today's codes: sessions stored by earlier versions, log queries and dashboards read
/// them (docs/operations.md). Each row is one reason as the stores, the audit trail and the metrics show it.
/// </summary>
public sealed class SessionEndReasonTests
{
    public static TheoryData<string, SessionEndKind, SessionEndActor, string, string> Reasons => new()
    {
        // code, kind, actor, tokenservice.reason tag, audit actor for a session of client "web"
        { "logout", SessionEndKind.Logout, SessionEndActor.User, "logout", "user" },
        { "revoked_by_user", SessionEndKind.OtherSessionsEndedByUser, SessionEndActor.User, "revoked_by_user", "user" },
        { "revoked_by_client", SessionEndKind.ClientRevocation, SessionEndActor.Client, "revoked_by_client", "client:web" },
        { "revoked_by_admin", SessionEndKind.AdminLogout, SessionEndActor.Admin, "revoked_by_admin", "admin" },
        { "refresh_token_reuse", SessionEndKind.RefreshTokenReuse, SessionEndActor.System, "refresh_token_reuse", "system" },
        { "session_limit", SessionEndKind.SessionLimit, SessionEndActor.System, "session_limit", "system" },
        { "idle_timeout", SessionEndKind.IdleTimeout, SessionEndActor.System, "idle_timeout", "system" },
        { "absolute_lifetime", SessionEndKind.AbsoluteLifetime, SessionEndActor.System, "absolute_lifetime", "system" },
        { "idp:account-disabled", SessionEndKind.IdpEvent, SessionEndActor.IdentityProvider, "idp_event:idp", "idp" },
        { "idp:account-deleted", SessionEndKind.IdpEvent, SessionEndActor.IdentityProvider, "idp_event:idp", "idp" },
        { "idp:credential-changed", SessionEndKind.IdpEvent, SessionEndActor.IdentityProvider, "idp_event:idp", "idp" },
        { "idp:sessions-revoked", SessionEndKind.IdpEvent, SessionEndActor.IdentityProvider, "idp_event:idp", "idp" },
        { "graph:user-deleted", SessionEndKind.IdpEvent, SessionEndActor.IdentityProvider, "idp_event:graph", "idp" },
        { "graph:account-disabled", SessionEndKind.IdpEvent, SessionEndActor.IdentityProvider, "idp_event:graph", "idp" },
        { "auth0:user-deleted", SessionEndKind.IdpEvent, SessionEndActor.IdentityProvider, "idp_event:auth0", "idp" },
        { "auth0:password-changed", SessionEndKind.IdpEvent, SessionEndActor.IdentityProvider, "idp_event:auth0", "idp" },
        { "auth0:user-blocked", SessionEndKind.IdpEvent, SessionEndActor.IdentityProvider, "idp_event:auth0", "idp" },
        { "ssf:session-revoked", SessionEndKind.IdpEvent, SessionEndActor.IdentityProvider, "idp_event:ssf", "idp" },
        { "ssf:credential-change", SessionEndKind.IdpEvent, SessionEndActor.IdentityProvider, "idp_event:ssf", "idp" },
        { "ssf:account-disabled", SessionEndKind.IdpEvent, SessionEndActor.IdentityProvider, "idp_event:ssf", "idp" },
        { "ssf:account-purged", SessionEndKind.IdpEvent, SessionEndActor.IdentityProvider, "idp_event:ssf", "idp" },
        { "ssf:credential-compromise", SessionEndKind.IdpEvent, SessionEndActor.IdentityProvider, "idp_event:ssf", "idp" },
    };

    [Theory]
    [MemberData(nameof(Reasons))]
    public void A_stored_code_reads_back_as_its_reason_with_kind_actor_and_telemetry_names(
        string code, SessionEndKind kind, SessionEndActor actor, string metricTag, string auditActor)
    {
        Assert.True(SessionEndReason.TryParse(code, out var reason));
        Assert.Equal(code, reason.Code);
        Assert.Equal(code, reason.ToString());
        Assert.Equal(kind, reason.Kind);
        Assert.Equal(actor, reason.Actor);
        Assert.Equal(metricTag, reason.MetricTag);
        Assert.Equal(auditActor, reason.AuditActor("web"));
        if (kind == SessionEndKind.IdpEvent)
        {
            Assert.Equal(code, reason.IdpSource + ":" + reason.IdpEventType);
        }
        else
        {
            Assert.Null(reason.IdpSource);
            Assert.Null(reason.IdpEventType);
        }
    }

    [Fact]
    public void Every_reason_has_a_row_above_and_a_code_of_its_own()
    {
        var codes = Reasons.Select(row => (string)row[0]).ToHashSet(StringComparer.Ordinal);
        Assert.Equal(codes.Order(StringComparer.Ordinal), SessionEndReason.All.Select(r => r.Code).Order(StringComparer.Ordinal));
        Assert.Equal(SessionEndReason.All.Count, codes.Count);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("LOGOUT")]
    [InlineData("idp:")]
    [InlineData("idp:something-new")]
    public void An_unknown_or_absent_code_is_no_reason(string? code)
    {
        Assert.False(SessionEndReason.TryParse(code, out var reason));
        Assert.Null(reason);
    }

    [Theory]
    [InlineData("sdu", "auth0:user-deleted")]
    [InlineData("scp", "auth0:password-changed")]
    [InlineData("limit_wc", "auth0:user-blocked")]
    [InlineData("limit_sul", "auth0:user-blocked")]
    [InlineData("s", null)]
    public void Auth0_log_codes_map_to_todays_reason_codes(string logCode, string? expected) =>
        Assert.Equal(expected, IdpEventTypes.Auth0Reason(logCode)?.Code);

    [Theory]
    [InlineData(IdpEventTypes.CaepSessionRevoked, "ssf:session-revoked")]
    [InlineData(IdpEventTypes.CaepCredentialChange, "ssf:credential-change")]
    [InlineData(IdpEventTypes.RiscAccountDisabled, "ssf:account-disabled")]
    [InlineData(IdpEventTypes.RiscAccountPurged, "ssf:account-purged")]
    [InlineData(IdpEventTypes.RiscCredentialCompromise, "ssf:credential-compromise")]
    [InlineData("https://schemas.openid.net/secevent/risc/event-type/account-enabled", null)]
    public void Security_event_types_map_to_todays_reason_codes(string eventType, string? expected) =>
        Assert.Equal(expected, IdpEventTypes.SecurityEventReason(eventType)?.Code);

    private static readonly DateTimeOffset Created = new(2026, 11, 23, 5, 0, 0, TimeSpan.Zero);

    private static SessionRecord Session(string? revocationReason = null) => new()
    {
        SessionId = "s1",
        UserId = "u1",
        Subject = "u1",
        ClientId = "web",
        Scope = "a",
        Audiences = ["api://x"],
        CreatedAt = Created,
        LastActivityAt = Created,
        IdleExpiresAt = Created.AddHours(1),
        AbsoluteExpiresAt = Created.AddHours(8),
        Amr = [],
        RefreshTokenHash = "h",
        RefreshTokenExpiresAt = Created.AddHours(1),
        RetiredRefreshTokenHashes = [],
        WriteId = "w",
        PurgeAt = Created.AddHours(9),
        RevokedAt = revocationReason is null ? null : Created.AddMinutes(5),
        RevocationReason = revocationReason,
    };

    [Fact]
    public void A_session_ended_for_its_stored_reason_or_the_timeout_it_passed()
    {
        Assert.Null(SessionEndReason.Of(Session(), Created.AddMinutes(59)));
        Assert.Same(SessionEndReason.IdleTimeout, SessionEndReason.Of(Session(), Created.AddHours(1)));
        Assert.Same(SessionEndReason.AbsoluteLifetime, SessionEndReason.Of(Session() with { IdleExpiresAt = Created.AddHours(9) }, Created.AddHours(8)));

        // A revoked session keeps its revocation reason after its timeouts pass.
        Assert.Same(SessionEndReason.SessionLimit, SessionEndReason.Of(Session("session_limit"), Created.AddMinutes(10)));
        Assert.Same(SessionEndReason.GraphUserDeleted, SessionEndReason.Of(Session("graph:user-deleted"), Created.AddDays(2)));
        Assert.Null(SessionEndReason.Of(Session("a-reason-of-a-later-version"), Created.AddMinutes(10)));
    }
}
