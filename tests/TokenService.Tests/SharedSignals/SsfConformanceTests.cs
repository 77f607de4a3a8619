using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using TokenService.Clients;
using TokenService.Configuration;
using TokenService.Keys;
using TokenService.Sessions;
using TokenService.SharedSignals;

namespace TokenService.Tests.SharedSignals;

/// <summary>
/// The conformance table of the transmitter: one test per normative requirement of SSF 1.0, CAEP 1.0, RFC 8417,
/// RFC 8935 and RFC 8936 this version implements, named for the section it comes from. The SETs are made by the service's own
/// <see cref="SecurityEventTokenSigner"/> with the host's signing keys; the stream rules are <see cref="SsfStream"/>'s
/// and <see cref="SsfStreamRegistry"/>'s. (Through HTTP on every host: <see cref="SharedSignalsTests{TFixture}"/>.)
/// </summary>
public sealed class SsfConformanceTests(SharedSignalsHostFixture fixture) : IClassFixture<SharedSignalsHostFixture>
{
    private const string Issuer = Infrastructure.TokenServiceTestHost.Issuer;

    private static readonly DateTimeOffset EndedAt = new(2026, 12, 6, 12, 0, 0, TimeSpan.Zero);

    private static SsfStream Stream(params string[] audiences) => new("stream-1", "api", audiences, capacity: 10);

    private static SsfOutboxEntry SessionRevoked(SessionEndReason? reason = null) => new()
    {
        Jti = SsfStreamRegistry.NewJti(),
        EventType = SsfProtocol.SessionRevokedEventType,
        OccurredAt = EndedAt,
        Txn = "txn-1",
        SessionId = "sid-1",
        Subject = "user-1",
        Reason = reason ?? SessionEndReason.AdminLogout,
    };

    private async Task<(JsonElement Header, JsonElement Claims, string Set)> SignAsync(SsfStream stream, SsfOutboxEntry entry)
    {
        var set = await fixture.Host.Services.GetRequiredService<SecurityEventTokenSigner>().SignAsync(stream, entry, default);
        var parts = set.Split('.');
        Assert.Equal(3, parts.Length);
        return (Part(parts[0]), Part(parts[1]), set);
    }

    private static JsonElement Part(string encoded) => JsonDocument.Parse(Base64UrlEncoding.DecodeStrict(encoded)!).RootElement.Clone();

    [Fact]
    public async Task RFC8417_2_3_and_SSF_4_1_1_a_set_is_explicitly_typed_secevent_jwt()
    {
        var (header, _, _) = await SignAsync(Stream("api://orders"), SessionRevoked());
        Assert.Equal("secevent+jwt", header.GetProperty("typ").GetString());
    }

    [Fact]
    public async Task SSF_4_1_4_a_set_is_signed_by_a_key_the_jwks_publishes_under_its_kid()
    {
        var (header, _, set) = await SignAsync(Stream("api://orders"), SessionRevoked());
        var keys = await fixture.Host.Services.GetRequiredService<ISigningKeyService>().GetKeySetAsync(default);
        var key = keys.Find(header.GetProperty("kid").GetString()!);
        Assert.NotNull(key);
        Assert.Equal(key.Algorithm, header.GetProperty("alg").GetString());
        var lastDot = set.LastIndexOf('.');
        Assert.True(key.VerifySignature(Encoding.ASCII.GetBytes(set[..lastDot]), Base64UrlEncoding.DecodeStrict(set.AsSpan(lastDot + 1))!));
    }

    [Fact]
    public async Task SSF_4_1_2_a_set_has_no_sub_claim()
    {
        var (_, claims, _) = await SignAsync(Stream("api://orders"), SessionRevoked());
        Assert.False(claims.TryGetProperty("sub", out _));
    }

    [Fact]
    public async Task SSF_4_1_7_a_set_has_no_exp_claim()
    {
        var (_, claims, _) = await SignAsync(Stream("api://orders"), SessionRevoked());
        Assert.False(claims.TryGetProperty("exp", out _));
    }

    [Fact]
    public async Task SSF_4_1_6_iss_is_the_transmitters_issuer_as_in_the_stream_configuration()
    {
        var (_, claims, _) = await SignAsync(Stream("api://orders"), SessionRevoked());
        Assert.Equal(Issuer, claims.GetProperty("iss").GetString());
    }

    [Fact]
    public async Task SSF_4_1_8_aud_is_the_streams_audience_a_string_for_one_an_array_for_several()
    {
        var (_, one, _) = await SignAsync(Stream("api://orders"), SessionRevoked());
        Assert.Equal("api://orders", one.GetProperty("aud").GetString());
        var (_, two, _) = await SignAsync(Stream("api://orders", "api://orders-mobile"), SessionRevoked());
        Assert.Equal(["api://orders", "api://orders-mobile"], two.GetProperty("aud").EnumerateArray().Select(a => a.GetString()));
    }

    [Fact]
    public async Task RFC8417_2_2_jti_and_iat_are_present_and_jti_is_the_queued_events()
    {
        var entry = SessionRevoked();
        var (_, claims, _) = await SignAsync(Stream("api://orders"), entry);
        Assert.Equal(entry.Jti, claims.GetProperty("jti").GetString());
        Assert.Equal(JsonValueKind.Number, claims.GetProperty("iat").ValueKind);
        Assert.NotEqual(entry.Jti, SessionRevoked().Jti);
    }

    [Fact]
    public async Task SSF_4_1_9_txn_is_the_one_of_the_change_that_ended_the_session()
    {
        var (_, claims, _) = await SignAsync(Stream("api://orders"), SessionRevoked());
        Assert.Equal("txn-1", claims.GetProperty("txn").GetString());
    }

    [Fact]
    public async Task SSF_3_1_1_a_caep_event_carries_the_top_level_sub_id_a_complex_subject_of_session_and_user()
    {
        var (_, claims, _) = await SignAsync(Stream("api://orders"), SessionRevoked());
        var subject = claims.GetProperty("sub_id");
        Assert.Equal("complex", subject.GetProperty("format").GetString()); // SSF 1.0 §3.3
        Assert.Equal("opaque", subject.GetProperty("session").GetProperty("format").GetString());
        Assert.Equal("sid-1", subject.GetProperty("session").GetProperty("id").GetString());
        Assert.Equal("iss_sub", subject.GetProperty("user").GetProperty("format").GetString()); // RFC 9493 §3.2.1
        Assert.Equal(Issuer, subject.GetProperty("user").GetProperty("iss").GetString());
        Assert.Equal("user-1", subject.GetProperty("user").GetProperty("sub").GetString());
    }

    [Fact]
    public async Task SSF_4_2_1_the_events_claim_holds_exactly_one_event_CAEP_3_1_session_revoked()
    {
        var (_, claims, _) = await SignAsync(Stream("api://orders"), SessionRevoked());
        var events = claims.GetProperty("events").EnumerateObject().ToList();
        Assert.Equal("https://schemas.openid.net/secevent/caep/event-type/session-revoked", Assert.Single(events).Name);
    }

    [Fact]
    public async Task CAEP_3_1_1_event_timestamp_is_when_the_revocation_was_committed()
    {
        var (_, claims, _) = await SignAsync(Stream("api://orders"), SessionRevoked());
        var revoked = claims.GetProperty("events").GetProperty(SsfProtocol.SessionRevokedEventType);
        Assert.Equal(EndedAt.ToUnixTimeSeconds(), revoked.GetProperty("event_timestamp").GetInt64());
    }

    [Fact]
    public async Task CAEP_2_initiating_entity_is_admin_user_policy_or_system_for_every_reason_that_is_sent()
    {
        string[] allowed = ["admin", "user", "policy", "system"];
        foreach (var reason in SessionEndReason.All.Where(r => r.Kind is not (SessionEndKind.IdleTimeout or SessionEndKind.AbsoluteLifetime)))
        {
            var (_, claims, _) = await SignAsync(Stream("api://orders"), SessionRevoked(reason));
            var revoked = claims.GetProperty("events").GetProperty(SsfProtocol.SessionRevokedEventType);
            Assert.Contains(revoked.GetProperty("initiating_entity").GetString(), allowed);
        }

        Assert.Equal("user", SecurityEventTokenSigner.InitiatingEntity(SessionEndReason.Logout));
        Assert.Equal("admin", SecurityEventTokenSigner.InitiatingEntity(SessionEndReason.AdminLogout));
        Assert.Equal("policy", SecurityEventTokenSigner.InitiatingEntity(SessionEndReason.RefreshTokenReuse));
        Assert.Equal("system", SecurityEventTokenSigner.InitiatingEntity(SessionEndReason.GraphUserDeleted));
    }

    [Fact]
    public async Task CAEP_2_reason_admin_is_an_object_keyed_by_a_language_tag()
    {
        var (_, claims, _) = await SignAsync(Stream("api://orders"), SessionRevoked(SessionEndReason.RefreshTokenReuse));
        var reason = claims.GetProperty("events").GetProperty(SsfProtocol.SessionRevokedEventType).GetProperty("reason_admin");
        Assert.Equal(JsonValueKind.Object, reason.ValueKind);
        Assert.Equal("refresh_token_reuse", reason.GetProperty("en").GetString());
    }

    [Fact]
    public async Task SSF_8_1_4_1_a_verification_event_has_an_opaque_sub_id_of_the_stream_id_and_echoes_the_state()
    {
        var stream = Stream("api://orders");
        var (_, claims, _) = await SignAsync(stream, new SsfOutboxEntry
        {
            Jti = SsfStreamRegistry.NewJti(), EventType = SsfProtocol.VerificationEventType, OccurredAt = EndedAt, State = "abc",
        });
        Assert.Equal("opaque", claims.GetProperty("sub_id").GetProperty("format").GetString());
        Assert.Equal(stream.StreamId, claims.GetProperty("sub_id").GetProperty("id").GetString());
        Assert.Equal("abc", claims.GetProperty("events").GetProperty(SsfProtocol.VerificationEventType).GetProperty("state").GetString());
    }

    [Fact]
    public void SSF_8_1_1_events_delivered_is_the_supported_events_requested_and_an_unknown_request_is_ignored()
    {
        var stream = Stream("api://orders");
        Assert.Equal(SsfProtocol.EventsSupported, stream.EventsDelivered);
        stream.EventsRequested = ["urn:example:unknown"];
        Assert.Empty(stream.EventsDelivered);
        Assert.False(stream.DeliversSessionRevoked);
        stream.EventsRequested = ["urn:example:unknown", SsfProtocol.SessionRevokedEventType];
        Assert.Equal([SsfProtocol.SessionRevokedEventType], stream.EventsDelivered);
        Assert.True(stream.DeliversSessionRevoked);
    }

    [Fact]
    public void SSF_8_1_1_1_a_second_stream_of_the_same_receiver_is_refused()
    {
        var registry = Registry(out var receiver, out _);
        Assert.NotNull(registry.TryCreate(receiver, null, null));
        Assert.Null(registry.TryCreate(receiver, null, null));
    }

    [Fact]
    public void SSF_8_1_2_a_paused_stream_transmits_nothing_and_holds_its_events()
    {
        var stream = Stream("api://orders");
        lock (stream.Gate)
        {
            stream.Status = SsfStreamStatus.Paused;
            Assert.True(stream.EnqueueLocked(SessionRevoked()));
            Assert.Empty(stream.PollLocked([], 10).Batch);
            stream.Status = SsfStreamStatus.Enabled;
            Assert.Single(stream.PollLocked([], 10).Batch);
        }
    }

    [Fact]
    public void SSF_8_1_2_a_disabled_stream_transmits_nothing_and_holds_nothing()
    {
        var stream = Stream("api://orders");
        lock (stream.Gate)
        {
            stream.Status = SsfStreamStatus.Disabled;
            Assert.False(stream.EnqueueLocked(SessionRevoked()));
            stream.Status = SsfStreamStatus.Enabled;
            Assert.Empty(stream.PollLocked([], 10).Batch);
        }
    }

    [Fact]
    public void SSF_8_1_2_held_events_are_transmitted_in_the_order_they_were_generated()
    {
        var stream = Stream("api://orders");
        var entries = Enumerable.Range(0, 5).Select(_ => SessionRevoked()).ToList();
        lock (stream.Gate)
        {
            stream.Status = SsfStreamStatus.Paused;
            entries.ForEach(e => stream.EnqueueLocked(e));
            stream.Status = SsfStreamStatus.Enabled;
            Assert.Equal(entries.Select(e => e.Jti), stream.PollLocked([], 10).Batch.Select(e => e.Jti));
        }
    }

    [Fact]
    public void RFC8936_2_4_acknowledged_sets_are_not_sent_again_and_unacknowledged_ones_are()
    {
        var stream = Stream("api://orders");
        var (first, second) = (SessionRevoked(), SessionRevoked());
        lock (stream.Gate)
        {
            stream.EnqueueLocked(first);
            stream.EnqueueLocked(second);
            Assert.Equal(2, stream.PollLocked([], 10).Batch.Count);
            var (batch, more) = stream.PollLocked([first.Jti], 10);
            Assert.Equal([second.Jti], batch.Select(e => e.Jti));
            Assert.False(more);
        }
    }

    [Fact]
    public void RFC8936_2_2_max_events_bounds_the_answer_and_more_available_says_what_is_left()
    {
        var stream = Stream("api://orders");
        lock (stream.Gate)
        {
            for (var i = 0; i < 3; i++)
            {
                stream.EnqueueLocked(SessionRevoked());
            }

            var (batch, more) = stream.PollLocked([], 2);
            Assert.Equal(2, batch.Count);
            Assert.True(more);
            Assert.Empty(stream.PollLocked([], 0).Batch);
        }
    }

    [Fact]
    public void A_full_outbox_drops_its_oldest_event_and_counts_it()
    {
        var stream = new SsfStream("s", "api", ["api://orders"], capacity: 2);
        var entries = Enumerable.Range(0, 3).Select(_ => SessionRevoked()).ToList();
        lock (stream.Gate)
        {
            entries.ForEach(e => stream.EnqueueLocked(e));
            Assert.Equal(entries.Skip(1).Select(e => e.Jti), stream.PollLocked([], 10).Batch.Select(e => e.Jti));
        }

        Assert.Equal(1, stream.Dropped);
    }

    [Fact]
    public void Only_streams_of_receivers_sharing_an_audience_with_the_session_are_told_of_it()
    {
        var registry = Registry(out var orders, out var billing);
        var ordersStream = registry.TryCreate(orders, null, null)!;
        var billingStream = registry.TryCreate(billing, null, null)!;
        var session = new SessionRecord
        {
            SessionId = "sid-b", UserId = "u", Subject = "u", ClientId = "web", Scope = "a", Audiences = ["api://billing"], CreatedAt = EndedAt,
            LastActivityAt = EndedAt, IdleExpiresAt = EndedAt, AbsoluteExpiresAt = EndedAt, RefreshTokenHash = "h", RefreshTokenExpiresAt = EndedAt, WriteId = "w", PurgeAt = EndedAt,
        };
        registry.SessionsEnded([session], SessionEndReason.AdminLogout, EndedAt);
        Assert.Equal(0, ordersStream.Pending);
        Assert.Equal(1, billingStream.Pending);
    }

    [Fact]
    public async Task RFC8935_2_a_set_is_posted_as_application_secevent_jwt_accepting_json_with_the_streams_authorization_header()
    {
        await using var push = new PushHarness(fixture.Host.Services);
        await push.StartAsync();
        push.Queue("headers");
        var request = await push.Receiver.NextAsync();
        Assert.Equal(HttpMethod.Post, request.Method);
        Assert.Equal(PushHarness.Endpoint, request.Url.OriginalString);
        Assert.Equal("application/secevent+jwt", request.ContentType);
        Assert.Equal("application/json", request.Accept);
        Assert.Equal(PushHarness.Authorization, request.Authorization); // SSF 1.0 §8.1.1 authorization_header
        var (header, claims, _) = (Part(request.Body.Split('.')[0]), Part(request.Body.Split('.')[1]), request.Body);
        Assert.Equal("secevent+jwt", header.GetProperty("typ").GetString());
        Assert.Equal("headers", claims.GetProperty("events").GetProperty(SsfProtocol.VerificationEventType).GetProperty("state").GetString());
    }

    [Fact]
    public async Task RFC8935_2_2_a_202_means_delivered_and_the_set_is_not_sent_again()
    {
        await using var push = new PushHarness(fixture.Host.Services);
        await push.StartAsync();
        push.Queue("one");
        push.Queue("two");
        Assert.Equal(["one", "two"], new[] { await push.Receiver.NextAsync(), await push.Receiver.NextAsync() }.Select(PushHarness.StateOf));
        await push.PendingAsync(0);
        push.Time.Advance(TimeSpan.FromHours(1));
        push.Queue("three");
        Assert.Equal("three", PushHarness.StateOf(await push.Receiver.NextAsync()));
        Assert.Equal(3, push.Receiver.Received.Count);
    }

    [Fact]
    public async Task RFC8935_2_3_a_400_error_drops_that_set_which_is_never_sent_again_and_the_next_goes()
    {
        await using var push = new PushHarness(fixture.Host.Services);
        push.Receiver.Answer = (index, _, _) => Task.FromResult(index == 0
            ? PushHarness.Status(System.Net.HttpStatusCode.BadRequest, """{"err":"invalid_audience","description":"not ours"}""")
            : PushHarness.Status(System.Net.HttpStatusCode.Accepted));
        await push.StartAsync();
        push.Queue("refused");
        push.Queue("accepted");
        Assert.Equal("refused", PushHarness.StateOf(await push.Receiver.NextAsync()));
        Assert.Equal("accepted", PushHarness.StateOf(await push.Receiver.NextAsync()));
        await push.PendingAsync(0);
        push.Time.Advance(TimeSpan.FromHours(1));
        push.Queue("later");
        Assert.Equal("later", PushHarness.StateOf(await push.Receiver.NextAsync()));
        Assert.Equal(3, push.Receiver.Received.Count);
        lock (push.Stream.Gate)
        {
            Assert.Equal(0, push.Stream.PushFailures); // a refusal is not a failing delivery
        }
    }

    [Fact]
    public async Task RFC8935_2_a_retried_set_is_the_same_set_with_the_same_jti()
    {
        await using var push = new PushHarness(fixture.Host.Services);
        push.Receiver.Answer = (index, _, _) => Task.FromResult(PushHarness.Status(index == 0 ? System.Net.HttpStatusCode.ServiceUnavailable : System.Net.HttpStatusCode.Accepted));
        await push.StartAsync();
        push.Queue("again");
        var first = await push.Receiver.NextAsync();
        push.Time.SetUtcNow(await push.RetryAtAfterAsync(1));
        var retry = await push.Receiver.NextAsync();
        Assert.Equal(first.Jti, retry.Jti);
        Assert.Equal(first.Body, retry.Body);
    }

    private static SsfStreamRegistry Registry(out RegisteredClient orders, out RegisteredClient billing)
    {
        orders = new RegisteredClient { ClientId = "api", Type = ClientType.ResourceServer, AllowedAudiences = ["api://orders"] };
        billing = new RegisteredClient { ClientId = "billing-api", Type = ClientType.ResourceServer, AllowedAudiences = ["api://billing"] };
        return new SsfStreamRegistry(new Clients(orders, billing), Options.Create(new SharedSignalsOptions { Enabled = true }), NullLogger<SsfStreamRegistry>.Instance);
    }

    private sealed class Clients(params RegisteredClient[] clients) : IClientStore
    {
        public RegisteredClient? Find(string clientId) => clients.FirstOrDefault(c => c.ClientId == clientId);

        public bool IsAllowedOrigin(string origin) => false;
    }
}
