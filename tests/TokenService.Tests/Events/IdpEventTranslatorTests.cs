using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using TokenService.Configuration;
using TokenService.Events;
using TokenService.Idp;
using TokenService.Sessions;
using TokenService.Tests.Infrastructure;

namespace TokenService.Tests.Events;

/// <summary>Envelopes for the translators' unit tests, as IdpEventEnvelopeReader would hand them over.</summary>
internal static class TranslatorEnvelopes
{
    public static readonly DateTimeOffset Time = new(2026, 11, 23, 5, 0, 0, TimeSpan.Zero);

    public static IdpEventEnvelope Of(string type, JsonNode? data, string? source = "idp", string? contentType = null) =>
        new(Guid.NewGuid().ToString(), type, source, Time, data is null ? default : JsonDocument.Parse(data.ToJsonString()).RootElement.Clone(), contentType);
}

/// <summary>Our own schema (TokenService.Idp.*) and Event Grid's system events.</summary>
public sealed class GenericIdpEventTranslatorTests
{
    private readonly GenericIdpEventTranslator _translator = new();

    [Fact]
    public async Task Each_type_ends_the_named_users_sessions_with_its_reason_at_occurred_at_or_else_the_envelope_time()
    {
        var occurred = TranslatorEnvelopes.Time.AddMinutes(-3);
        var cases = new (string Type, SessionEndReason Reason)[]
        {
            (IdpEventTypes.AccountDisabled, SessionEndReason.IdpAccountDisabled),
            (IdpEventTypes.AccountDeleted, SessionEndReason.IdpAccountDeleted),
            (IdpEventTypes.CredentialChanged, SessionEndReason.IdpCredentialChanged),
            (IdpEventTypes.PasswordReset, SessionEndReason.IdpCredentialChanged),
            (IdpEventTypes.SessionsRevoked, SessionEndReason.IdpSessionsRevoked),
        };
        foreach (var (type, reason) in cases)
        {
            var e = TranslatorEnvelopes.Of(type, new JsonObject { ["userId"] = "alice", ["occurredAt"] = occurred.ToString("O") });
            var decision = await _translator.TranslateAsync(e, CancellationToken.None);
            Assert.NotNull(decision);
            Assert.Equal("alice", decision.UserId);
            Assert.Same(reason, decision.Reason);
            Assert.Equal(occurred, decision.OccurredAt);
            Assert.Equal("idp|" + e.Id, decision.DeduplicationKey);
        }

        var undated = await _translator.TranslateAsync(TranslatorEnvelopes.Of(IdpEventTypes.AccountDisabled, new JsonObject { ["userId"] = "bob" }), CancellationToken.None);
        Assert.Equal(TranslatorEnvelopes.Time, undated?.OccurredAt);
    }

    [Theory]
    [InlineData("{}")]
    [InlineData("{\"userId\":42}")]
    [InlineData("{\"userId\":\"\"}")]
    public async Task An_event_without_a_usable_user_id_is_malformed(string data) =>
        await Assert.ThrowsAsync<MalformedEventException>(async () =>
            await _translator.TranslateAsync(TranslatorEnvelopes.Of(IdpEventTypes.AccountDeleted, JsonNode.Parse(data)), CancellationToken.None));

    [Fact]
    public async Task Event_grid_system_events_are_acknowledged_and_other_types_are_not_its_own()
    {
        var deleted = await _translator.TranslateAsync(TranslatorEnvelopes.Of(IdpEventTypes.SubscriptionDeleted, new JsonObject()), CancellationToken.None);
        Assert.Null(deleted?.UserId);
        Assert.Equal("Event Grid system event", deleted?.IgnoredBecause);
        Assert.Null(await _translator.TranslateAsync(TranslatorEnvelopes.Of(IdpEventTypes.GraphUserDeleted, new JsonObject { ["userId"] = "alice" }), CancellationToken.None));
        Assert.Null(await _translator.TranslateAsync(TranslatorEnvelopes.Of("tokenservice.idp.accountdisabled", new JsonObject { ["userId"] = "alice" }), CancellationToken.None));
    }
}

/// <summary>Microsoft Graph change notifications: clientState, lifecycle, UserDeleted, UserUpdated with the lookup.</summary>
public sealed class GraphIdpEventTranslatorTests
{
    private const string ClientState = "secretClientState";

    private static GraphIdpEventTranslator Translator(IGraphUserLookup? graph = null, string? clientState = ClientState) =>
        new(Options.Create(new EventsOptions { GraphClientState = clientState }), NullLogger.Instance, graph);

    private static IdpEventEnvelope Notification(string type, string? userId = "oid-1", string? clientState = ClientState, string? lifecycle = null)
    {
        var data = new JsonObject { ["changeType"] = "updated", ["clientState"] = clientState };
        if (userId is not null)
        {
            data["resourceData"] = new JsonObject { ["@odata.type"] = "#Microsoft.Graph.User", ["id"] = userId };
        }

        if (lifecycle is not null)
        {
            data["lifecycleEvent"] = lifecycle;
        }

        return TranslatorEnvelopes.Of(type, data, source: "/tenants/t/applications/a");
    }

    [Fact]
    public async Task User_deleted_ends_the_sessions_of_resource_data_id_or_of_the_id_ending_resource()
    {
        var decision = await Translator().TranslateAsync(Notification(IdpEventTypes.GraphUserDeleted), CancellationToken.None);
        Assert.Equal("oid-1", decision?.UserId);
        Assert.Same(SessionEndReason.GraphUserDeleted, decision?.Reason);
        Assert.Equal(TranslatorEnvelopes.Time, decision?.OccurredAt);

        var byResource = TranslatorEnvelopes.Of(IdpEventTypes.GraphUserDeleted, new JsonObject { ["clientState"] = ClientState, ["resource"] = "Users/oid-2" });
        Assert.Equal("oid-2", (await Translator().TranslateAsync(byResource, CancellationToken.None))?.UserId);
        await Assert.ThrowsAsync<MalformedEventException>(async () => await Translator().TranslateAsync(Notification(IdpEventTypes.GraphUserDeleted, userId: null), CancellationToken.None));
    }

    [Theory]
    [InlineData("not-the-client-state")]
    [InlineData(null)]
    public async Task A_notification_without_the_subscriptions_client_state_is_malformed(string? clientState) =>
        await Assert.ThrowsAsync<MalformedEventException>(async () => await Translator().TranslateAsync(Notification(IdpEventTypes.GraphUserDeleted, clientState: clientState), CancellationToken.None));

    [Fact]
    public async Task Without_a_configured_client_state_any_is_accepted() =>
        Assert.Equal("oid-1", (await Translator(clientState: null).TranslateAsync(Notification(IdpEventTypes.GraphUserDeleted, clientState: null), CancellationToken.None))?.UserId);

    [Fact]
    public async Task User_updated_asks_graph_disabled_or_gone_ends_the_sessions_enabled_or_unknown_does_not()
    {
        var graph = new Lookup();
        var cases = new (GraphUserState State, SessionEndReason? Reason)[]
        {
            (GraphUserState.Disabled, SessionEndReason.GraphAccountDisabled),
            (GraphUserState.NotFound, SessionEndReason.GraphUserDeleted),
            (GraphUserState.Enabled, null),
            (GraphUserState.Unknown, null),
        };
        foreach (var (state, reason) in cases)
        {
            graph.State = state;
            var decision = await Translator(graph).TranslateAsync(Notification(IdpEventTypes.GraphUserUpdated), CancellationToken.None);
            Assert.NotNull(decision);
            Assert.Same(reason, decision.Reason);
            Assert.Equal(reason is null ? null : "oid-1", decision.UserId);
        }

        Assert.Equal(["oid-1", "oid-1", "oid-1", "oid-1"], graph.Asked);
        var noLookup = await Translator().TranslateAsync(Notification(IdpEventTypes.GraphUserUpdated), CancellationToken.None);
        Assert.Null(noLookup?.UserId);
        Assert.Contains("no Microsoft Graph lookup", noLookup?.IgnoredBecause, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(IdpEventTypes.GraphSubscriptionReauthorizationRequired, null, "reauthorizationRequired")]
    [InlineData(IdpEventTypes.GraphSubscriptionMissed, null, "missed")]
    [InlineData("Microsoft.Graph.SomethingElse", "subscriptionRemoved", "subscriptionRemoved")]
    public async Task Lifecycle_notifications_are_flagged_by_type_or_by_lifecycle_event_and_end_nothing(string type, string? lifecycle, string expected)
    {
        var decision = await Translator().TranslateAsync(Notification(type, userId: null, lifecycle: lifecycle), CancellationToken.None);
        Assert.Equal(expected, decision?.GraphLifecycleEvent);
        Assert.Null(decision?.UserId);
    }

    [Fact]
    public async Task Other_types_are_not_its_own()
    {
        Assert.Null(await Translator().TranslateAsync(Notification("Microsoft.Graph.GroupUpdated"), CancellationToken.None));
        Assert.Null(await Translator().TranslateAsync(Notification(IdpEventTypes.AccountDisabled, clientState: null), CancellationToken.None));
    }

    private sealed class Lookup : IGraphUserLookup
    {
        public GraphUserState State { get; set; }

        public List<string> Asked { get; } = [];

        public ValueTask<GraphUserState> GetUserStateAsync(string userId, CancellationToken cancellationToken)
        {
            Asked.Add(userId);
            return ValueTask.FromResult(State);
        }
    }
}

/// <summary>Auth0 log events through the partner topic.</summary>
public sealed class Auth0IdpEventTranslatorTests
{
    private readonly Auth0IdpEventTranslator _translator = new();

    private static IdpEventEnvelope Log(string type, string code, string? userId = "auth0|123", string source = "urn:auth0:tenant.eu.auth0.com:logs")
    {
        var entry = new JsonObject { ["type"] = code };
        if (userId is not null)
        {
            entry["user_id"] = userId;
        }

        return TranslatorEnvelopes.Of(type, new JsonObject { ["log_id"] = "90020221123", ["data"] = entry }, source);
    }

    [Theory]
    [InlineData("sdu", "auth0:user-deleted")]
    [InlineData("scp", "auth0:password-changed")]
    [InlineData("limit_wc", "auth0:user-blocked")]
    public async Task Log_codes_that_end_sessions_name_the_log_entrys_user(string code, string reason)
    {
        var decision = await _translator.TranslateAsync(Log("auth0.logs." + code, code), CancellationToken.None);
        Assert.Equal("auth0|123", decision?.UserId);
        Assert.Equal(IdpEventTypes.Auth0Reason(code), decision?.Reason);
        Assert.Equal(reason, decision?.Reason?.Code);
        Assert.Equal(TranslatorEnvelopes.Time, decision?.OccurredAt);
    }

    [Fact]
    public async Task Other_codes_are_acknowledged_a_missing_user_id_is_malformed_and_other_sources_are_not_its_own()
    {
        // A source naming auth0 is enough; the code then comes from the log entry.
        var login = await _translator.TranslateAsync(Log("Contoso.Log", "s"), CancellationToken.None);
        Assert.Null(login?.UserId);
        Assert.Equal("Auth0 log type 's' does not end sessions", login?.IgnoredBecause);

        await Assert.ThrowsAsync<MalformedEventException>(async () => await _translator.TranslateAsync(Log("auth0.logs.sdu", "sdu", userId: null), CancellationToken.None));
        Assert.Null(await _translator.TranslateAsync(Log(IdpEventTypes.AccountDisabled, "sdu", source: "idp"), CancellationToken.None));
    }
}

/// <summary>Security Event Tokens inside an event, verified against the transmitter's JWKS.</summary>
public sealed class SecurityEventTranslatorTests : IDisposable
{
    private const string SessionRevoked = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";

    private readonly TestIdp _idp = new();
    private readonly SecurityEventTranslator _translator;

    public SecurityEventTranslatorTests()
    {
        var validator = new SecurityEventTokenValidator(
            Options.Create(new EventsOptions { SsfIssuer = TestIdp.Issuer, SsfJwksPath = _idp.JwksPath }),
            Options.Create(new TokenServiceOptions { Issuer = "https://tokens.test.example" }),
            new IdpTrust(TestIdp.Issuer, TestIdp.Audience, "oid", new StaticKeySource()),
            TimeProvider.System,
            NullLoggerFactory.Instance);
        _translator = new SecurityEventTranslator(validator);
    }

    public void Dispose() => _idp.Dispose();

    private string Set(string jti) => _idp.Sign(
        new JsonObject
        {
            ["iss"] = TestIdp.Issuer, ["aud"] = "https://tokens.test.example", ["iat"] = DateTimeOffset.UtcNow.ToUnixTimeSeconds(), ["jti"] = jti,
            ["sub_id"] = new JsonObject { ["format"] = "iss_sub", ["iss"] = TestIdp.Issuer, ["sub"] = "oid-1" },
            ["events"] = new JsonObject { [SessionRevoked] = new JsonObject { ["initiating_entity"] = "policy" } },
        },
        new JsonObject { ["alg"] = "RS256", ["kid"] = _idp.RsaKid, ["typ"] = "secevent+jwt" });

    [Theory]
    [InlineData(IdpEventTypes.SecurityEvent, null)]
    [InlineData("Contoso.Anything", "application/secevent+jwt")]
    [InlineData(SessionRevoked, null)]
    public async Task A_verified_set_ends_its_subjects_sessions_deduplicated_by_issuer_and_jti(string type, string? contentType)
    {
        var decision = await _translator.TranslateAsync(TranslatorEnvelopes.Of(type, JsonValue.Create(Set("jti-1")), contentType: contentType), CancellationToken.None);
        Assert.Equal("oid-1", decision?.UserId);
        Assert.Same(SessionEndReason.SsfSessionRevoked, decision?.Reason);
        Assert.Equal("set|" + TestIdp.Issuer.Length + "|" + TestIdp.Issuer + "|jti-1", decision?.DeduplicationKey);
    }

    [Fact]
    public async Task Data_that_is_not_a_verifiable_set_is_malformed_and_other_types_are_not_its_own()
    {
        await Assert.ThrowsAsync<MalformedEventException>(async () =>
            await _translator.TranslateAsync(TranslatorEnvelopes.Of(IdpEventTypes.SecurityEvent, new JsonObject { ["set"] = Set("jti-2") }), CancellationToken.None));
        var forged = Set("jti-3");
        forged = forged[..forged.LastIndexOf('.')] + ".AAAA";
        var refused = await Assert.ThrowsAsync<MalformedEventException>(async () =>
            await _translator.TranslateAsync(TranslatorEnvelopes.Of(IdpEventTypes.SecurityEvent, JsonValue.Create(forged)), CancellationToken.None));
        Assert.StartsWith("The security event token is not acceptable (", refused.Message, StringComparison.Ordinal);
        Assert.Null(await _translator.TranslateAsync(TranslatorEnvelopes.Of(IdpEventTypes.AccountDisabled, JsonValue.Create(Set("jti-4"))), CancellationToken.None));
    }
}
