using System.Net;
using Azure;
using Azure.Core.Pipeline;
using Azure.Messaging;
using Azure.Messaging.EventGrid;
using TokenService.Events;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.IdentityModel.JsonWebTokens;
using TokenService.Tests.Infrastructure;
using static TokenService.Tests.Infrastructure.TokenServiceTestHost;

namespace TokenService.Tests.Events;

/// <summary>IdP deprovision events through the Event Grid webhook and SSF push (CONTRACT §5).</summary>
public sealed class IdpEventsTests : IdpEventsTestsBase
{
    protected override HostKind Kind => HostKind.Standalone;
}

/// <summary>The same deliveries to the Functions app's <c>/events/idp</c> and <c>/events/ssf</c> HTTP functions.</summary>
public sealed class IdpEventsTestsOnFunctions : IdpEventsTestsBase
{
    protected override HostKind Kind => HostKind.Functions;
}

/// <summary>
/// The same deliveries through the published app under a real Functions host, one host shared by the tests
/// (<see cref="RealFunctionsHostPool"/>); every test uses users of its own. The Event Grid trigger itself, through the
/// host's <c>/runtime/webhooks/EventGrid</c>, is in RealFunctionsHostTriggerTests.
/// </summary>
[RealFunctionsHostTier]
[Collection(RealFunctionsHostCollection.Name)]
[NotOnRealHost(nameof(Event_ids_and_types_are_logged_as_sanitised_values_and_no_log_holds_the_webhook_key), LogsInAnotherProcess)]
[NotOnRealHost(nameof(A_graph_notification_without_the_subscription_s_client_state_is_refused_whole), LogsInAnotherProcess)]
[NotOnRealHost(nameof(Graph_lifecycle_notifications_are_warnings_with_a_stable_event_id_and_flag_healthz_without_failing_it), LogsInAnotherProcess)]
public sealed class IdpEventsTestsOnRealHost(RealFunctionsHostPool pool) : IdpEventsTestsBase
{
    private const string LogsInAnotherProcess = "reads the logs the app writes, which a real host's worker writes in another process";

    protected override HostKind Kind => HostKind.RealFunctionsHost;

    protected override Task<TokenServiceTestHost> StartHostAsync(CapturingLoggerProvider logs) => pool.GetAsync(RealFunctionsHostPool.IdpEvents);
}

public abstract class IdpEventsTestsBase : IAsyncLifetime
{
    public const string GraphClientState = "secretClientState";

    private readonly CapturingLoggerProvider _logs = new();
    private TokenServiceTestHost _host = null!;

    protected abstract HostKind Kind { get; }

    public async Task InitializeAsync() => _host = await StartHostAsync(_logs);

    /// <summary>The events configuration, with <paramref name="idp"/> doubling as the Shared Signals transmitter.</summary>
    public static Dictionary<string, string?> Settings(TestIdp idp) => new()
    {
        ["Idp:UserIdClaim"] = "oid",
        ["Events:SsfIssuer"] = TestIdp.Issuer,
        ["Events:SsfJwksPath"] = idp.JwksPath,
        ["Events:GraphClientState"] = GraphClientState,
    };

    /// <summary>A host of its own per test, its logs captured in <paramref name="logs"/>.</summary>
    protected virtual async Task<TokenServiceTestHost> StartHostAsync(CapturingLoggerProvider logs)
    {
        var idp = new TestIdp();
        return await TokenServiceTestHost.StartAsync(Kind, Settings(idp), idp: idp, services: logs.AddTo);
    }

    public async Task DisposeAsync() => await _host.DisposeAsync();

    private async Task<(string Oid, TokenPair Login)> LoginAsync()
    {
        var oid = Guid.NewGuid().ToString();
        return (oid, await _host.LoginAsync("pairwise-" + oid, c => c["oid"] = oid));
    }

    private Task<HttpResponseMessage> DeliverAsync(string json, string contentType = "application/json", string? key = WebhookSecret, string? headerKey = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/events/idp" + (key is null ? string.Empty : "?key=" + Uri.EscapeDataString(key)))
        {
            Content = new StringContent(json, Encoding.UTF8),
        };
        request.Content.Headers.ContentType = System.Net.Http.Headers.MediaTypeHeaderValue.Parse(contentType);
        if (headerKey is not null)
        {
            request.Headers.Add("X-Webhook-Key", headerKey);
        }

        return _host.Client.SendAsync(request);
    }

    private async Task<HttpResponseMessage> PushAsync(string set)
    {
        using var push = new HttpRequestMessage(HttpMethod.Post, "/events/ssf") { Content = new StringContent(set) };
        push.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/secevent+jwt");
        return await _host.Client.SendAsync(push);
    }

    private async Task AssertSessionEndedAsync(TokenPair login)
    {
        Assert.False(await _host.IsActiveAsync(login.AccessToken));
        using var refresh = await _host.RefreshAsync(login.RefreshToken);
        await AssertOAuthErrorAsync(refresh, "invalid_grant");
    }

    private static string GraphUserDeleted(string oid, string id, string? clientState = GraphClientState) => new JsonObject
    {
        ["specversion"] = "1.0",
        ["id"] = id,
        ["source"] = "/tenants/00000000-0000-0000-0000-000000000001/applications/00000000-0000-0000-0000-000000000002",
        ["type"] = "Microsoft.Graph.UserDeleted",
        ["subject"] = $"Users/{oid}",
        ["time"] = DateTimeOffset.UtcNow.ToString("O"),
        ["datacontenttype"] = "application/json",
        ["data"] = new JsonObject
        {
            ["@odata.type"] = "#Microsoft.Graph.ChangeNotification",
            ["changeType"] = "deleted",
            ["clientState"] = clientState,
            ["resource"] = $"Users/{oid}",
            ["resourceData"] = new JsonObject { ["@odata.type"] = "#Microsoft.Graph.User", ["@odata.id"] = $"Users/{oid}", ["id"] = oid, ["organizationId"] = "00000000-0000-0000-0000-000000000001" },
            ["subscriptionExpirationDateTime"] = "2026-12-01T00:00:00Z",
            ["subscriptionId"] = "c6a2c2b4-0000-0000-0000-000000000000",
            ["tenantId"] = "00000000-0000-0000-0000-000000000001",
        },
    }.ToJsonString();

    /// <summary>A publisher as Azure's own SDK sends: EventGridPublisherClient, to this host's webhook (either host).</summary>
    private EventGridPublisherClient Publisher() => new(
        new Uri(_host.BaseAddress, "/events/idp?key=" + Uri.EscapeDataString(WebhookSecret)),
        new AzureKeyCredential("not-used-by-the-webhook"),
        new EventGridPublisherClientOptions { Transport = new HttpClientTransport(_host.Client), Retry = { MaxRetries = 0 } });

    [Fact]
    public async Task Batches_published_with_the_event_grid_sdk_in_both_schemas_end_the_named_users_sessions()
    {
        var (disabled, disabledLogin) = await LoginAsync();
        var (reset, resetLogin) = await LoginAsync();
        var (bystander, bystanderLogin) = await LoginAsync();

        // SendEventsAsync throws RequestFailedException unless the webhook answers 2xx.
        var publisher = Publisher();
        await publisher.SendEventsAsync(
        [
            new EventGridEvent("users/" + disabled, IdpEventTypes.AccountDisabled, "1", new { userId = disabled }),
            new EventGridEvent("users/other", "Contoso.Unrelated", "1", new { userId = bystander }),
        ]);

        await AssertSessionEndedAsync(disabledLogin);
        Assert.True(await _host.IsActiveAsync(bystanderLogin.AccessToken));

        await publisher.SendEventsAsync(
        [
            new CloudEvent("/idp", IdpEventTypes.PasswordReset, new { userId = reset }),
            new CloudEvent("/idp", "Contoso.Unrelated", new { userId = bystander }),
        ]);
        await AssertSessionEndedAsync(resetLogin);
        Assert.True(await _host.IsActiveAsync(bystanderLogin.AccessToken));
    }

    [Fact]
    public async Task A_batch_mixing_the_two_schemas_is_refused_whole()
    {
        var (oid, login) = await LoginAsync();
        var body = "[" + new JsonObject { ["id"] = "a", ["subject"] = "s", ["eventType"] = IdpEventTypes.AccountDisabled, ["eventTime"] = DateTimeOffset.UtcNow.ToString("O"), ["dataVersion"] = "1", ["data"] = new JsonObject { ["userId"] = oid } }.ToJsonString()
            + "," + new JsonObject { ["specversion"] = "1.0", ["id"] = "b", ["source"] = "/idp", ["type"] = IdpEventTypes.AccountDisabled, ["data"] = new JsonObject { ["userId"] = oid } }.ToJsonString() + "]";
        using var response = await DeliverAsync(body);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.True(await _host.IsActiveAsync(login.AccessToken));
    }

    [Fact]
    public async Task Event_grid_subscription_validation_handshake_echoes_the_code()
    {
        var json = """[{"id":"2d1781af-3a4c-4d7c-bd0c-e34b19da4e66","topic":"/subscriptions/x/resourceGroups/rg/providers/Microsoft.EventGrid/topics/idp","subject":"","data":{"validationCode":"512d38b6-c7b8-40c8-89fe-f46f9e9622b6","validationUrl":"https://rp-eastus2.eventgrid.azure.net/eventsubscriptions/x/validate?id=512d38b6"},"eventType":"Microsoft.EventGrid.SubscriptionValidationEvent","eventTime":"2026-11-23T05:00:00Z","metadataVersion":"1","dataVersion":"1"}]""";
        using var response = await DeliverAsync(json);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("512d38b6-c7b8-40c8-89fe-f46f9e9622b6", (await JsonAsync(response)).GetProperty("validationResponse").GetString());
    }

    [Fact]
    public async Task Cloudevents_abuse_protection_handshake_allows_the_requesting_origin()
    {
        using var request = new HttpRequestMessage(HttpMethod.Options, "/events/idp?key=" + WebhookSecret);
        request.Headers.Add("WebHook-Request-Origin", "eventgrid.azure.net");
        using var response = await _host.Client.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("eventgrid.azure.net", response.Headers.GetValues("WebHook-Allowed-Origin").Single());

        using var noKey = new HttpRequestMessage(HttpMethod.Options, "/events/idp");
        noKey.Headers.Add("WebHook-Request-Origin", "eventgrid.azure.net");
        using var refused = await _host.Client.SendAsync(noKey);
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
    }

    [Fact]
    public async Task A_graph_user_deleted_cloudevent_ends_every_session_of_that_object_id_and_redelivery_changes_nothing_twice()
    {
        var (oid, first) = await LoginAsync();
        var second = await _host.LoginAsync("another-sub", c => c["oid"] = oid);
        var (_, bystander) = await LoginAsync();
        var eventJson = GraphUserDeleted(oid, Guid.NewGuid().ToString());

        using var delivered = await DeliverAsync(eventJson, "application/cloudevents+json; charset=utf-8");
        var result = await JsonAsync(delivered);
        Assert.Equal(HttpStatusCode.OK, delivered.StatusCode);
        Assert.Equal(2, result.GetProperty("sessions_ended").GetInt32());
        await AssertSessionEndedAsync(first);
        await AssertSessionEndedAsync(second);
        Assert.True(await _host.IsActiveAsync(bystander.AccessToken));

        // Redelivery of the same event id: acknowledged, nothing changes (not even a session opened since).
        var again = await _host.LoginAsync("after-" + oid, c => c["oid"] = oid);
        using var redelivered = await DeliverAsync(eventJson, "application/cloudevents+json");
        Assert.Equal(1, (await JsonAsync(redelivered)).GetProperty("duplicates").GetInt32());
        Assert.True(await _host.IsActiveAsync(again.AccessToken));
    }

    [Fact]
    public async Task A_late_event_never_ends_a_session_opened_after_it()
    {
        var (oid, login) = await LoginAsync();
        var old = new JsonObject
        {
            ["specversion"] = "1.0", ["id"] = Guid.NewGuid().ToString(), ["source"] = "idp", ["type"] = "TokenService.Idp.AccountDisabled",
            ["time"] = DateTimeOffset.UtcNow.AddMinutes(-10).ToString("O"), ["data"] = new JsonObject { ["userId"] = oid },
        };
        using var response = await DeliverAsync(old.ToJsonString(), "application/cloudevents+json");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.True(await _host.IsActiveAsync(login.AccessToken));
    }

    [Theory]
    [InlineData("bidi\u202euser")]
    [InlineData("isolate\u2067user")]
    [InlineData("line\u2028sep")]
    [InlineData("para\u2029sep")]
    public async Task An_event_naming_a_user_id_the_exchange_refuses_is_malformed(string userId)
    {
        // docs/api.md, "User ids": the same rule as the token exchange (UserIds); an id it refuses names no session, so an
        // event naming it is malformed and changes nothing, rather than an acknowledged no-op.
        var (_, login) = await LoginAsync();
        var batch = new JsonArray
        {
            new JsonObject { ["specversion"] = "1.0", ["id"] = Guid.NewGuid().ToString(), ["source"] = "idp", ["type"] = "TokenService.Idp.AccountDisabled", ["data"] = new JsonObject { ["userId"] = userId } },
        };
        using var response = await DeliverAsync(batch.ToJsonString(), "application/cloudevents-batch+json");
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.True(await _host.IsActiveAsync(login.AccessToken));
    }

    [Fact]
    public async Task A_batch_with_one_malformed_event_is_refused_and_changes_nothing()
    {
        var (oid, login) = await LoginAsync();
        var batch = new JsonArray
        {
            JsonNode.Parse(GraphUserDeleted(oid, Guid.NewGuid().ToString())),
            new JsonObject { ["specversion"] = "1.0", ["id"] = "x", ["source"] = "idp", ["type"] = "TokenService.Idp.AccountDeleted", ["data"] = new JsonObject { ["user"] = "no userId here" } },
        };
        using var response = await DeliverAsync(batch.ToJsonString(), "application/cloudevents-batch+json");
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.True(await _host.IsActiveAsync(login.AccessToken));

        foreach (var garbage in new[] { "not json", "{}", "[]", "42", """[{"specversion":"0.3","id":"a","source":"s","type":"t"}]""", """[{"id":"a","eventType":"TokenService.Idp.AccountDisabled","eventTime":"yesterday","data":{"userId":"u"}}]""" })
        {
            using var refused = await DeliverAsync(garbage);
            Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        }

        Assert.True(await _host.IsActiveAsync(login.AccessToken));
    }

    [Fact]
    public async Task Our_event_types_in_event_grid_schema_and_auth0_log_events_end_sessions_and_unknown_types_are_acknowledged()
    {
        var (disabled, a) = await LoginAsync();
        var (reset, b) = await LoginAsync();
        var (auth0User, c) = await LoginAsync();
        var now = DateTimeOffset.UtcNow.AddSeconds(5).ToString("O");
        var eventGrid = new JsonArray
        {
            new JsonObject { ["id"] = Guid.NewGuid().ToString(), ["topic"] = "/idp", ["subject"] = "users", ["eventType"] = "TokenService.Idp.AccountDisabled", ["eventTime"] = now, ["dataVersion"] = "1", ["data"] = new JsonObject { ["userId"] = disabled } },
            new JsonObject { ["id"] = Guid.NewGuid().ToString(), ["topic"] = "/idp", ["subject"] = "users", ["eventType"] = "TokenService.Idp.PasswordReset", ["eventTime"] = now, ["dataVersion"] = "1", ["data"] = new JsonObject { ["userId"] = reset } },
            new JsonObject { ["id"] = Guid.NewGuid().ToString(), ["topic"] = "/idp", ["subject"] = "x", ["eventType"] = "Contoso.Something.Else", ["eventTime"] = now, ["dataVersion"] = "1", ["data"] = new JsonObject() },
        };
        using var response = await DeliverAsync(eventGrid.ToJsonString());
        var json = await JsonAsync(response);
        Assert.Equal(2, json.GetProperty("revoked").GetInt32());
        Assert.Equal(1, json.GetProperty("ignored").GetInt32());
        await AssertSessionEndedAsync(a);
        await AssertSessionEndedAsync(b);

        var auth0 = new JsonObject
        {
            ["specversion"] = "1.0", ["id"] = Guid.NewGuid().ToString(), ["source"] = "urn:auth0:tenant.eu.auth0.com:logs", ["type"] = "auth0.logs.sdu",
            ["time"] = now, ["data"] = new JsonObject { ["log_id"] = "90020221123", ["data"] = new JsonObject { ["type"] = "sdu", ["user_id"] = auth0User, ["date"] = now } },
        };
        using var deleted = await DeliverAsync(auth0.ToJsonString(), "application/cloudevents+json");
        Assert.Equal(HttpStatusCode.OK, deleted.StatusCode);
        await AssertSessionEndedAsync(c);
    }

    [Fact]
    public async Task Deliveries_without_the_webhook_key_are_refused()
    {
        var (oid, login) = await LoginAsync();
        using var noKey = await DeliverAsync(GraphUserDeleted(oid, "k1"), key: null);
        Assert.Equal(HttpStatusCode.Unauthorized, noKey.StatusCode);
        using var wrong = await DeliverAsync(GraphUserDeleted(oid, "k2"), key: "wrong-key-wrong-key");
        Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
        Assert.True(await _host.IsActiveAsync(login.AccessToken));
    }

    private string SecurityEventToken(
        string eventType, string subject, bool opaque = false, System.Security.Cryptography.RSA? signer = null, Action<JsonObject>? claims = null)
    {
        var header = new JsonObject { ["alg"] = "RS256", ["kid"] = _host.Idp.RsaKid, ["typ"] = "secevent+jwt" };
        var payload = new JsonObject
        {
            ["iss"] = TestIdp.Issuer,
            ["aud"] = "https://tokens.test.example",
            ["iat"] = DateTimeOffset.UtcNow.AddSeconds(5).ToUnixTimeSeconds(),
            ["jti"] = Guid.NewGuid().ToString("N"),
            ["sub_id"] = opaque ? new JsonObject { ["format"] = "opaque", ["id"] = subject } : new JsonObject { ["format"] = "iss_sub", ["iss"] = TestIdp.Issuer, ["sub"] = subject },
            ["events"] = new JsonObject { [eventType] = new JsonObject { ["initiating_entity"] = "policy" } },
        };
        claims?.Invoke(payload);
        if (signer is null)
        {
            return _host.Idp.Sign(payload, header);
        }

        var input = TestIdp.Encode(header) + "." + TestIdp.Encode(payload);
        return input + "." + TokenService.Jose.Base64UrlEncoding.Encode(signer.SignData(Encoding.ASCII.GetBytes(input), System.Security.Cryptography.HashAlgorithmName.SHA256, System.Security.Cryptography.RSASignaturePadding.Pkcs1));
    }

    [Fact]
    public async Task Ssf_push_of_a_verified_caep_session_revoked_set_ends_the_sessions_and_bad_sets_get_rfc8935_errors()
    {
        var (oid, login) = await LoginAsync();
        using var push = new HttpRequestMessage(HttpMethod.Post, "/events/ssf") { Content = new StringContent(SecurityEventToken("https://schemas.openid.net/secevent/caep/event-type/session-revoked", oid)) };
        push.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/secevent+jwt");
        using var accepted = await _host.Client.SendAsync(push);
        Assert.Equal(HttpStatusCode.Accepted, accepted.StatusCode);
        await AssertSessionEndedAsync(login);

        using var attacker = System.Security.Cryptography.RSA.Create(2048);
        var (victim, victimLogin) = await LoginAsync();
        using var forged = new HttpRequestMessage(HttpMethod.Post, "/events/ssf") { Content = new StringContent(SecurityEventToken("https://schemas.openid.net/secevent/risc/event-type/account-disabled", victim, signer: attacker)) };
        forged.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/secevent+jwt");
        using var refused = await _host.Client.SendAsync(forged);
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.Equal("invalid_key", (await JsonAsync(refused)).GetProperty("err").GetString());
        Assert.True(await _host.IsActiveAsync(victimLogin.AccessToken));
    }

    [Fact]
    public async Task A_risc_account_purged_set_inside_a_cloudevent_ends_the_sessions()
    {
        var (oid, login) = await LoginAsync();
        var cloudEvent = new JsonObject
        {
            ["specversion"] = "1.0", ["id"] = Guid.NewGuid().ToString(), ["source"] = "https://ssf.idp.example", ["type"] = "TokenService.Idp.SecurityEvent",
            ["datacontenttype"] = "application/secevent+jwt",
            ["data"] = SecurityEventToken("https://schemas.openid.net/secevent/risc/event-type/account-purged", oid, opaque: true),
        };
        using var response = await DeliverAsync(cloudEvent.ToJsonString(), "application/cloudevents+json");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        await AssertSessionEndedAsync(login);
    }

    private const string SessionRevoked = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";

    // ---- Shared Signals (RFC 8417 / RFC 8935) ------------------------------------------------------------------------

    [Fact]
    public async Task A_set_issued_longer_ago_than_max_security_event_age_is_refused_and_changes_nothing()
    {
        var (oid, login) = await LoginAsync();
        var old = SecurityEventToken(SessionRevoked, oid, claims: c => c["iat"] = DateTimeOffset.UtcNow.AddDays(-30).ToUnixTimeSeconds());
        using var refused = await PushAsync(old);
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.Equal("invalid_request", (await JsonAsync(refused)).GetProperty("err").GetString());
        Assert.True(await _host.IsActiveAsync(login.AccessToken));
    }

    [Fact]
    public async Task A_set_whose_exp_has_passed_is_refused_pushed_or_inside_an_event_and_changes_nothing()
    {
        // RFC 8417 §2.2 allows exp in a SET, and RFC 7519 §4.1.4 says a JWT must not be accepted on or after it (with
        // the validator's bounded clock skew, 60 s): the transmitter said the event no longer holds.
        var (oid, login) = await LoginAsync();
        var now = DateTimeOffset.UtcNow;
        void Expired(JsonObject c)
        {
            c["iat"] = now.AddMinutes(-10).ToUnixTimeSeconds();
            c["exp"] = now.AddMinutes(-5).ToUnixTimeSeconds();
        }

        using var pushed = await PushAsync(SecurityEventToken(SessionRevoked, oid, claims: Expired));
        Assert.Equal(HttpStatusCode.BadRequest, pushed.StatusCode);
        var error = await JsonAsync(pushed);
        Assert.Equal("invalid_request", error.GetProperty("err").GetString());
        Assert.Contains("expired", error.GetProperty("description").GetString(), StringComparison.Ordinal);

        var cloudEvent = new JsonObject
        {
            ["specversion"] = "1.0", ["id"] = Guid.NewGuid().ToString(), ["source"] = "https://ssf.idp.example", ["type"] = "TokenService.Idp.SecurityEvent",
            ["datacontenttype"] = "application/secevent+jwt", ["data"] = SecurityEventToken(SessionRevoked, oid, claims: Expired),
        };
        using var delivered = await DeliverAsync(cloudEvent.ToJsonString(), "application/cloudevents+json");
        Assert.Equal(HttpStatusCode.BadRequest, delivered.StatusCode);
        Assert.True(await _host.IsActiveAsync(login.AccessToken));

        // An exp still ahead is honoured as a lifetime, not refused.
        using var current = await PushAsync(SecurityEventToken(SessionRevoked, oid, claims: c => c["exp"] = now.AddMinutes(5).ToUnixTimeSeconds()));
        Assert.Equal(HttpStatusCode.Accepted, current.StatusCode);
        await AssertSessionEndedAsync(login);
    }

    [Fact]
    public async Task A_set_without_iat_is_refused_with_invalid_request()
    {
        var (oid, login) = await LoginAsync();
        using var refused = await PushAsync(SecurityEventToken(SessionRevoked, oid, claims: c => c.Remove("iat")));
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.Equal("invalid_request", (await JsonAsync(refused)).GetProperty("err").GetString());
        Assert.True(await _host.IsActiveAsync(login.AccessToken));
    }

    [Fact]
    public async Task A_set_pushed_again_with_other_bytes_is_a_duplicate_by_iss_and_jti()
    {
        var (oid, login) = await LoginAsync();
        var set = SecurityEventToken(SessionRevoked, oid);
        using (var first = await PushAsync(set))
        {
            Assert.Equal(HttpStatusCode.Accepted, first.StatusCode);
        }

        await AssertSessionEndedAsync(login);

        // The user signs in again after the event; the same SET delivered again (here with a trailing newline, or inside
        // a CloudEvent) must not end that session.
        var again = await _host.LoginAsync("again-" + oid, c => c["oid"] = oid);
        using (var redelivered = await PushAsync(set + "\n"))
        {
            Assert.Equal(HttpStatusCode.Accepted, redelivered.StatusCode);
        }

        var cloudEvent = new JsonObject
        {
            ["specversion"] = "1.0", ["id"] = Guid.NewGuid().ToString(), ["source"] = "https://ssf.idp.example", ["type"] = "TokenService.Idp.SecurityEvent",
            ["datacontenttype"] = "application/secevent+jwt", ["data"] = set,
        };
        using (var wrapped = await DeliverAsync(cloudEvent.ToJsonString(), "application/cloudevents+json"))
        {
            Assert.Equal(1, (await JsonAsync(wrapped)).GetProperty("duplicates").GetInt32());
        }

        Assert.True(await _host.IsActiveAsync(again.AccessToken));
    }

    [Fact]
    public async Task An_iss_sub_subject_of_another_issuer_is_acknowledged_and_ends_nothing()
    {
        var (oid, login) = await LoginAsync();
        var set = SecurityEventToken(SessionRevoked, oid, claims: c =>
            c["sub_id"] = new JsonObject { ["format"] = "iss_sub", ["iss"] = "https://another-idp.example", ["sub"] = oid });
        using var response = await PushAsync(set);
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        Assert.True(await _host.IsActiveAsync(login.AccessToken));

        // The same user named with our IdP's issuer: the sessions end.
        using var ours = await PushAsync(SecurityEventToken(SessionRevoked, oid));
        Assert.Equal(HttpStatusCode.Accepted, ours.StatusCode);
        await AssertSessionEndedAsync(login);
    }

    [Fact]
    public async Task A_session_opened_in_the_same_second_as_the_event_ends()
    {
        // iat is a whole second (RFC 7519 NumericDate): the session below is opened after that second began, so an exact
        // comparison would keep it; Events:EventTimeSkew (5 s by default) ends it.
        var second = DateTimeOffset.FromUnixTimeSeconds(DateTimeOffset.UtcNow.ToUnixTimeSeconds());
        var (oid, login) = await LoginAsync();
        var set = SecurityEventToken(SessionRevoked, oid, claims: c => c["iat"] = second.ToUnixTimeSeconds());
        using var response = await PushAsync(set);
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        await AssertSessionEndedAsync(login);
    }

    // ---- Event Grid deliveries ---------------------------------------------------------------------------------------

    [Fact]
    public async Task A_batch_mixing_the_subscription_validation_event_with_other_events_is_refused_whole()
    {
        var (oid, login) = await LoginAsync();
        var batch = new JsonArray
        {
            JsonNode.Parse("""{"id":"2d1781af-3a4c-4d7c-bd0c-e34b19da4e66","topic":"/idp","subject":"","data":{"validationCode":"512d38b6-c7b8-40c8-89fe-f46f9e9622b6"},"eventType":"Microsoft.EventGrid.SubscriptionValidationEvent","eventTime":"2026-11-23T05:00:00Z","dataVersion":"1"}"""),
            new JsonObject { ["id"] = Guid.NewGuid().ToString(), ["topic"] = "/idp", ["subject"] = "users", ["eventType"] = "TokenService.Idp.AccountDisabled", ["eventTime"] = DateTimeOffset.UtcNow.ToString("O"), ["dataVersion"] = "1", ["data"] = new JsonObject { ["userId"] = oid } },
        };
        using var response = await DeliverAsync(batch.ToJsonString());
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.True(await _host.IsActiveAsync(login.AccessToken));
    }

    [Fact]
    public async Task The_webhook_key_may_travel_in_the_x_webhook_key_header()
    {
        var (oid, login) = await LoginAsync();
        using (var wrong = await DeliverAsync(GraphUserDeleted(oid, Guid.NewGuid().ToString()), "application/cloudevents+json", key: null, headerKey: "wrong-key-wrong-key"))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
        }

        Assert.True(await _host.IsActiveAsync(login.AccessToken));
        using var delivered = await DeliverAsync(GraphUserDeleted(oid, Guid.NewGuid().ToString()), "application/cloudevents+json", key: null, headerKey: WebhookSecret);
        Assert.Equal(HttpStatusCode.OK, delivered.StatusCode);
        await AssertSessionEndedAsync(login);

        using var options = new HttpRequestMessage(HttpMethod.Options, "/events/idp");
        options.Headers.Add("WebHook-Request-Origin", "eventgrid.azure.net");
        options.Headers.Add("X-Webhook-Key", WebhookSecret);
        using var handshake = await _host.Client.SendAsync(options);
        Assert.Equal(HttpStatusCode.OK, handshake.StatusCode);
    }

    [Fact]
    public async Task Event_ids_and_types_are_logged_as_sanitised_values_and_no_log_holds_the_webhook_key()
    {
        var (oid, login) = await LoginAsync();
        var forgedId = "evt-1\r\n2026-01-01 INFO TokenService: IdP event forged\u2028";
        var longId = new string('x', 1000);
        var batch = new JsonArray
        {
            new JsonObject { ["specversion"] = "1.0", ["id"] = forgedId, ["source"] = "idp", ["type"] = "Contoso.Forged\nType", ["data"] = new JsonObject() },
            new JsonObject { ["specversion"] = "1.0", ["id"] = longId, ["source"] = "idp", ["type"] = "TokenService.Idp.AccountDisabled", ["data"] = new JsonObject { ["userId"] = oid } },
        };
        using var response = await DeliverAsync(batch.ToJsonString(), "application/cloudevents-batch+json"); // ?key= fallback
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        await AssertSessionEndedAsync(login);

        var events = _logs.Entries.Where(e => e.Category.StartsWith("TokenService.Events", StringComparison.Ordinal)).ToList();
        Assert.Contains(events, e => e.Id.Id == 5001);
        Assert.Contains(events, e => e.Id.Id == 5002 && e.Message.Contains("evt-1\\u000d\\u000a2026-01-01", StringComparison.Ordinal));
        Assert.All(events, e =>
        {
            Assert.DoesNotContain(e.Message, c => char.IsControl(c) || c is '\u2028' or '\u2029');
            foreach (var (name, value) in e.Values.Where(v => v.Key != "{OriginalFormat}"))
            {
                var text = Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture) ?? string.Empty;
                Assert.True(text.Length <= 128, $"{name} is logged with {text.Length} characters");
                Assert.DoesNotContain(text, c => char.IsControl(c) || c is '\u2028' or '\u2029');
            }
        });

        Assert.DoesNotContain(_logs.Entries, e => e.Message.Contains(WebhookSecret, StringComparison.Ordinal) || e.Message.Contains("key=", StringComparison.Ordinal));
    }

    // ---- Microsoft Graph ---------------------------------------------------------------------------------------------

    [Fact]
    public async Task A_graph_notification_without_the_subscription_s_client_state_is_refused_whole()
    {
        var (oid, login) = await LoginAsync();
        var (other, otherLogin) = await LoginAsync();
        foreach (var clientState in new[] { "not-the-client-state", null })
        {
            var batch = new JsonArray
            {
                new JsonObject { ["specversion"] = "1.0", ["id"] = Guid.NewGuid().ToString(), ["source"] = "idp", ["type"] = "TokenService.Idp.AccountDisabled", ["data"] = new JsonObject { ["userId"] = other } },
                JsonNode.Parse(GraphUserDeleted(oid, Guid.NewGuid().ToString(), clientState)),
            };
            using var response = await DeliverAsync(batch.ToJsonString(), "application/cloudevents-batch+json");
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        }

        Assert.True(await _host.IsActiveAsync(login.AccessToken));
        Assert.True(await _host.IsActiveAsync(otherLogin.AccessToken));
        Assert.Contains(_logs.Entries, e => e.Id.Id == 5005 && e.Level == Microsoft.Extensions.Logging.LogLevel.Warning);
    }

    [Fact]
    public async Task Graph_lifecycle_notifications_are_warnings_with_a_stable_event_id_and_flag_healthz_without_failing_it()
    {
        using (var before = await _host.Client.GetAsync("/healthz"))
        {
            Assert.Equal("ok", (await JsonAsync(before)).GetProperty("graphSubscription").GetString());
        }

        var lifecycle = new JsonObject
        {
            ["specversion"] = "1.0", ["id"] = Guid.NewGuid().ToString(), ["type"] = "Microsoft.Graph.SubscriptionReauthorizationRequired",
            ["source"] = "/tenants/00000000-0000-0000-0000-000000000001/applications/00000000-0000-0000-0000-000000000002",
            ["subject"] = "Subscriptions/c6a2c2b4-0000-0000-0000-000000000000", ["time"] = DateTimeOffset.UtcNow.ToString("O"),
            ["datacontenttype"] = "application/json",
            ["data"] = new JsonObject
            {
                ["subscriptionId"] = "c6a2c2b4-0000-0000-0000-000000000000", ["subscriptionExpirationDateTime"] = DateTimeOffset.UtcNow.AddHours(1).ToString("O"),
                ["tenantId"] = "00000000-0000-0000-0000-000000000001", ["clientState"] = GraphClientState, ["lifecycleEvent"] = "reauthorizationRequired",
            },
        };
        using var response = await DeliverAsync(lifecycle.ToJsonString(), "application/cloudevents+json");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(1, (await JsonAsync(response)).GetProperty("ignored").GetInt32());
        var warning = Assert.Single(_logs.Entries, e => e.Id.Id == 5004);
        Assert.Equal(Microsoft.Extensions.Logging.LogLevel.Warning, warning.Level);
        Assert.Contains("reauthorizationRequired", warning.Message, StringComparison.Ordinal);

        using var after = await _host.Client.GetAsync("/healthz");
        var health = await JsonAsync(after);
        Assert.Equal(HttpStatusCode.OK, after.StatusCode);
        Assert.Equal("healthy", health.GetProperty("status").GetString());
        Assert.Equal("attention", health.GetProperty("graphSubscription").GetString());
    }
}
