using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using TokenService.Diagnostics;
using TokenService.Tests.Hardening;
using TokenService.Tests.Infrastructure;
using static TokenService.Tests.Infrastructure.TokenServiceTestHost;

namespace TokenService.Tests.Observability;

/// <summary>The security audit trail of the standalone host.</summary>
public sealed class AuditTrailTests : AuditTrailTestsBase
{
    protected override HostKind Kind => HostKind.Standalone;
}

/// <summary>The same through the Functions app.</summary>
public sealed class AuditTrailTestsOnFunctions : AuditTrailTestsBase
{
    protected override HostKind Kind => HostKind.Functions;
}

public abstract class AuditTrailTestsBase : IAsyncLifetime
{
    private static readonly string[] Fields = ["AuditEvent", "Time", "Actor", "UserId", "SessionId", "ClientId", "Outcome", "Reason"];

    private readonly CapturingLoggerProvider _logs = new();
    private TokenServiceTestHost _host = null!;

    protected abstract HostKind Kind { get; }

    public async Task InitializeAsync() =>
        _host = await StartAsync(Kind, new Dictionary<string, string?> { ["Idp:UserIdClaim"] = "oid" }, services: _logs.AddTo);

    public async Task DisposeAsync() => await _host.DisposeAsync();

    private List<CapturedLog> Audit => _logs.Entries.Where(e => e.Category == LoggerAuditSink.Category).ToList();

    private static string Field(CapturedLog entry, string name) =>
        Convert.ToString(entry.Values.Single(v => v.Key == name).Value, System.Globalization.CultureInfo.InvariantCulture)!;

    private Task<HttpResponseMessage> AdminPostAsync(string path)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path);
        request.Headers.Authorization = Basic("ops", OpsSecret);
        return _host.Client.SendAsync(request);
    }

    [Fact]
    public async Task Every_security_event_is_one_structured_audit_record_and_none_holds_a_token_or_secret()
    {
        var secrets = new List<string> { WebSecret, OpsSecret, WebhookSecret, ApiSecret };
        var oid = Guid.NewGuid().ToString();

        // Session open, refresh, reuse.
        var idToken = _host.Idp.IdToken("pairwise-" + oid, c => c["oid"] = oid);
        secrets.Add(idToken);
        using var exchange = await _host.ExchangeAsync(idToken);
        var login = await JsonAsync(exchange);
        var (access, refresh) = (login.GetProperty("access_token").GetString()!, login.GetProperty("refresh_token").GetString()!);
        secrets.AddRange([access, refresh]);
        using (var rotated = await _host.RefreshAsync(refresh))
        {
            var json = await JsonAsync(rotated);
            secrets.AddRange([json.GetProperty("access_token").GetString()!, json.GetProperty("refresh_token").GetString()!]);
        }

        using (var reused = await _host.RefreshAsync(refresh))
        {
            await AssertOAuthErrorAsync(reused, "invalid_grant");
        }

        // Client revocation of a refresh token and of an access token (RFC 7009).
        var second = await _host.LoginAsync("pairwise-" + oid, c => c["oid"] = oid);
        var third = await _host.LoginAsync("pairwise-" + oid, c => c["oid"] = oid);
        secrets.AddRange([second.AccessToken, second.RefreshToken, third.AccessToken, third.RefreshToken]);
        using (var revoke = await _host.PostFormAsync("/oauth2/revoke", [new("token", second.RefreshToken)], Basic("web", WebSecret)))
        {
            Assert.Equal(HttpStatusCode.OK, revoke.StatusCode);
        }

        using (var revoke = await _host.PostFormAsync("/oauth2/revoke", [new("token", third.AccessToken), new("token_type_hint", "access_token")], Basic("web", WebSecret)))
        {
            Assert.Equal(HttpStatusCode.OK, revoke.StatusCode);
        }

        // Admin logout, then an IdP event for a user with a live session.
        using (var logout = await AdminPostAsync("/management/users/" + Uri.EscapeDataString(oid) + "/revoke"))
        {
            Assert.Equal(HttpStatusCode.OK, logout.StatusCode);
        }

        var fourth = await _host.LoginAsync("pairwise-" + oid, c => c["oid"] = oid);
        secrets.AddRange([fourth.AccessToken, fourth.RefreshToken]);
        var cloudEvent = new JsonObject
        {
            ["specversion"] = "1.0",
            ["id"] = "evt-audit-1",
            ["source"] = "idp",
            ["type"] = "TokenService.Idp.AccountDisabled",
            ["data"] = new JsonObject { ["userId"] = oid },
        };
        using (var request = new HttpRequestMessage(HttpMethod.Post, "/events/idp?key=" + WebhookSecret) { Content = new StringContent(cloudEvent.ToJsonString(), Encoding.UTF8) })
        {
            request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse("application/cloudevents+json");
            using var delivered = await _host.Client.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, delivered.StatusCode);
        }

        // Key lifecycle: a rotation now, then the revocation of the key it replaced.
        var oldKid = await Crafted.ServiceKidAsync(_host);
        using (var rotate = await AdminPostAsync("/management/keys/rotate?immediate=true"))
        {
            Assert.Equal(HttpStatusCode.OK, rotate.StatusCode);
        }

        using (var revokeKey = await AdminPostAsync("/management/keys/" + oldKid + "/revoke"))
        {
            Assert.Equal(HttpStatusCode.OK, revokeKey.StatusCode);
        }

        var audit = Audit;
        CapturedLog One(AuditEventKind kind, Func<CapturedLog, bool>? where = null) =>
            Assert.Single(audit, e => e.Id.Id == (int)kind && e.Id.Name == kind.ToString() && (where?.Invoke(e) ?? true));

        var opened = audit.Where(e => e.Id.Id == (int)AuditEventKind.SessionOpened).ToList();
        Assert.Equal(4, opened.Count);
        Assert.All(opened, e => Assert.Equal(oid, Field(e, "UserId")));
        Assert.Equal("client:web", Field(opened[0], "Actor"));
        var reuse = One(AuditEventKind.RefreshTokenReuse);
        Assert.Equal(Field(opened[0], "SessionId"), Field(reuse, "SessionId"));
        One(AuditEventKind.SessionRevoked, e => Field(e, "Reason") == "refresh_token_reuse" && Field(e, "SessionId") == Field(opened[0], "SessionId"));
        One(AuditEventKind.SessionRevoked, e => Field(e, "Reason") == "revoked_by_client" && Field(e, "Actor") == "client:web");
        Assert.Equal("web", Field(One(AuditEventKind.AccessTokenRevoked), "ClientId"));
        var adminLogout = One(AuditEventKind.AdminLogout);
        Assert.Equal(("admin:ops", oid), (Field(adminLogout, "Actor"), Field(adminLogout, "UserId")));
        One(AuditEventKind.SessionRevoked, e => Field(e, "Reason") == "revoked_by_admin");
        var idpEvent = One(AuditEventKind.IdpEventRevocation);
        Assert.Equal(("idp:idp", oid, "sessions_ended"), (Field(idpEvent, "Actor"), Field(idpEvent, "UserId"), Field(idpEvent, "Outcome")));
        Assert.Contains("evt-audit-1", Field(idpEvent, "Reason"), StringComparison.Ordinal);
        Assert.Contains(audit, e => e.Id.Id == (int)AuditEventKind.KeyRotated && Field(e, "Actor") == "admin:ops" && Field(e, "Outcome") == "changed");
        Assert.Contains(oldKid, Field(One(AuditEventKind.KeyRevoked), "Reason"), StringComparison.Ordinal);

        // One schema for every record; never a token, a client secret, the webhook key or the ID token.
        Assert.All(audit, e =>
        {
            Assert.All(Fields, f => Assert.Contains(e.Values, v => v.Key == f));
            foreach (var (_, value) in e.Values)
            {
                var text = Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture) ?? string.Empty;
                Assert.DoesNotContain(secrets, s => text.Contains(s, StringComparison.Ordinal));
                Assert.DoesNotContain("eyJ", text, StringComparison.Ordinal); // no JWT of any kind
            }

            Assert.DoesNotContain(secrets, s => e.Message.Contains(s, StringComparison.Ordinal));
        });
    }
}
