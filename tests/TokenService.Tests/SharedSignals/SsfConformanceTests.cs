using System.Net;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using TokenService.Clients;
using TokenService.Configuration;
using TokenService.Keys;
using TokenService.Sessions;
using TokenService.SharedSignals;
using TokenService.Tests.Infrastructure;
using static TokenService.Tests.Infrastructure.TokenServiceTestHost;

namespace TokenService.Tests.SharedSignals;

/// <summary>The conformance table on the standalone host.</summary>
public sealed class SsfConformanceTests(SharedSignalsHostFixture fixture) : SsfConformanceTests<SharedSignalsHostFixture>(fixture);

/// <summary>The same table on the Functions app (its HTTP functions invoked in-process, its own services and keys).</summary>
public sealed class SsfConformanceTestsOnFunctions(SharedSignalsFunctionsHostFixture fixture) : SsfConformanceTests<SharedSignalsFunctionsHostFixture>(fixture);

/// <summary>
/// The conformance table of the transmitter: one test per normative requirement of SSF 1.0, CAEP 1.0, RFC 8417,
/// RFC 8935 and RFC 8936 this version implements, named for the section it comes from. The SETs are made by the host's own
/// <see cref="SecurityEventTokenSigner"/> with the host's signing keys, for every event type the transmitter sends; the
/// stream rules are <see cref="SsfStream"/>'s, <see cref="SsfStreamRegistry"/>'s and <see cref="SsfRevocationSignals"/>'s;
/// the metadata, stream API and end-to-end rules go through the host's HTTP routes. (More HTTP tests on every host,
/// the real Functions host included: <see cref="SharedSignalsTests{TFixture}"/>.)
/// <para>
/// Deliberate deviations, each with its comment and a line in docs/shared-signals.md: one stream per receiver (SSF 1.0
/// §8.1.1.1 lets a transmitter refuse a second one), no per-subject streams (<c>default_subjects</c> <c>ALL</c>, no
/// add/remove subject), and two event types of our own where CAEP 1.0 has none that fits
/// (<see cref="SsfProtocol.AccessTokenRevokedEventType"/>, <see cref="SsfProtocol.SigningKeyRevokedEventType"/>).
/// </para>
/// </summary>
public abstract class SsfConformanceTests<TFixture>(TFixture fixture) : IClassFixture<TFixture>
    where TFixture : HostFixture
{

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

    private static SsfOutboxEntry AccessTokenRevoked() => new()
    {
        Jti = SsfStreamRegistry.NewJti(),
        EventType = SsfProtocol.AccessTokenRevokedEventType,
        OccurredAt = EndedAt,
        Txn = "txn-2",
        RevokedId = "at-jti-1",
        RevokedUntil = EndedAt.AddMinutes(10),
    };

    private static SsfOutboxEntry SigningKeyRevoked() => new()
    {
        Jti = SsfStreamRegistry.NewJti(),
        EventType = SsfProtocol.SigningKeyRevokedEventType,
        OccurredAt = EndedAt,
        Txn = "txn-3",
        RevokedId = "kid-1",
    };

    /// <summary>A queued event of <paramref name="eventType"/>, one of every type the transmitter sends.</summary>
    private static SsfOutboxEntry Entry(string eventType) => eventType switch
    {
        SsfProtocol.SessionRevokedEventType => SessionRevoked(),
        SsfProtocol.AccessTokenRevokedEventType => AccessTokenRevoked(),
        SsfProtocol.SigningKeyRevokedEventType => SigningKeyRevoked(),
        SsfProtocol.VerificationEventType => new() { Jti = SsfStreamRegistry.NewJti(), EventType = eventType, OccurredAt = EndedAt, State = "s" },
        _ => throw new ArgumentOutOfRangeException(nameof(eventType)),
    };

    private TokenServiceTestHost Host => fixture.Host;

    private async Task<(JsonElement Header, JsonElement Claims, string Set)> SignAsync(SsfStream stream, SsfOutboxEntry entry)
    {
        var set = await Host.Services.GetRequiredService<SecurityEventTokenSigner>().SignAsync(stream, entry, default);
        var parts = set.Split('.');
        Assert.Equal(3, parts.Length);
        return (Part(parts[0]), Part(parts[1]), set);
    }

    private static JsonElement Part(string encoded) => JsonDocument.Parse(Base64UrlEncoding.DecodeStrict(encoded)!).RootElement.Clone();

    [Theory]
    [InlineData(SsfProtocol.SessionRevokedEventType)]
    [InlineData(SsfProtocol.AccessTokenRevokedEventType)]
    [InlineData(SsfProtocol.SigningKeyRevokedEventType)]
    [InlineData(SsfProtocol.VerificationEventType)]
    public async Task RFC8417_2_3_and_SSF_4_1_1_a_set_is_explicitly_typed_secevent_jwt(string eventType)
    {
        var (header, _, _) = await SignAsync(Stream("api://orders"), Entry(eventType));
        Assert.Equal("secevent+jwt", header.GetProperty("typ").GetString());
    }

    [Fact]
    public async Task SSF_4_1_4_a_set_is_signed_by_a_key_the_jwks_publishes_under_its_kid()
    {
        var (header, _, set) = await SignAsync(Stream("api://orders"), SessionRevoked());
        var keys = await Host.Services.GetRequiredService<ISigningKeyService>().GetKeySetAsync(default);
        var key = keys.Find(header.GetProperty("kid").GetString()!);
        Assert.NotNull(key);
        Assert.Equal(key.Algorithm, header.GetProperty("alg").GetString());
        var lastDot = set.LastIndexOf('.');
        Assert.True(key.VerifySignature(Encoding.ASCII.GetBytes(set[..lastDot]), Base64UrlEncoding.DecodeStrict(set.AsSpan(lastDot + 1))!));
    }

    [Theory]
    [InlineData(SsfProtocol.SessionRevokedEventType)]
    [InlineData(SsfProtocol.AccessTokenRevokedEventType)]
    [InlineData(SsfProtocol.SigningKeyRevokedEventType)]
    [InlineData(SsfProtocol.VerificationEventType)]
    public async Task SSF_4_1_2_a_set_has_no_sub_claim(string eventType)
    {
        var (_, claims, _) = await SignAsync(Stream("api://orders"), Entry(eventType));
        Assert.False(claims.TryGetProperty("sub", out _));
    }

    [Theory]
    [InlineData(SsfProtocol.SessionRevokedEventType)]
    [InlineData(SsfProtocol.AccessTokenRevokedEventType)]
    [InlineData(SsfProtocol.SigningKeyRevokedEventType)]
    [InlineData(SsfProtocol.VerificationEventType)]
    public async Task SSF_4_1_7_a_set_has_no_exp_claim(string eventType)
    {
        var (_, claims, _) = await SignAsync(Stream("api://orders"), Entry(eventType));
        Assert.False(claims.TryGetProperty("exp", out _));
    }

    [Theory]
    [InlineData(SsfProtocol.SessionRevokedEventType)]
    [InlineData(SsfProtocol.AccessTokenRevokedEventType)]
    [InlineData(SsfProtocol.SigningKeyRevokedEventType)]
    [InlineData(SsfProtocol.VerificationEventType)]
    public async Task SSF_4_1_6_iss_is_the_transmitters_issuer_as_in_the_stream_configuration(string eventType)
    {
        var (_, claims, _) = await SignAsync(Stream("api://orders"), Entry(eventType));
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

    [Theory]
    [InlineData(SsfProtocol.SessionRevokedEventType)]
    [InlineData(SsfProtocol.AccessTokenRevokedEventType)]
    [InlineData(SsfProtocol.SigningKeyRevokedEventType)]
    [InlineData(SsfProtocol.VerificationEventType)]
    public async Task RFC8417_2_2_jti_and_iat_are_present_and_jti_is_the_queued_events(string eventType)
    {
        var entry = Entry(eventType);
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

    [Theory]
    [InlineData(SsfProtocol.SessionRevokedEventType)]
    [InlineData(SsfProtocol.AccessTokenRevokedEventType)]
    [InlineData(SsfProtocol.SigningKeyRevokedEventType)]
    [InlineData(SsfProtocol.VerificationEventType)]
    public async Task SSF_4_2_1_the_events_claim_holds_exactly_one_event_of_the_queued_type(string eventType)
    {
        var (_, claims, _) = await SignAsync(Stream("api://orders"), Entry(eventType));
        Assert.Equal(eventType, Assert.Single(claims.GetProperty("events").EnumerateObject()).Name);
    }

    [Theory]
    [InlineData(SsfProtocol.SessionRevokedEventType)]
    [InlineData(SsfProtocol.AccessTokenRevokedEventType)]
    [InlineData(SsfProtocol.SigningKeyRevokedEventType)]
    [InlineData(SsfProtocol.VerificationEventType)]
    public async Task SSF_3_1_every_set_names_its_primary_subject_in_the_top_level_sub_id_never_in_the_event(string eventType)
    {
        // SSF 1.0 §3.1: a top-level sub_id MUST describe the primary subject; §3.1.2: a new event type (ours) MUST NOT use
        // a subject field in the event; §3.1.1 lets CAEP events carry one, and ours carry none either.
        var (_, claims, _) = await SignAsync(Stream("api://orders"), Entry(eventType));
        Assert.Equal(JsonValueKind.Object, claims.GetProperty("sub_id").ValueKind);
        Assert.False(string.IsNullOrEmpty(claims.GetProperty("sub_id").GetProperty("format").GetString()));
        Assert.False(claims.GetProperty("events").GetProperty(eventType).TryGetProperty("subject", out _));
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
    public void SSF_8_1_1_1_a_stream_beyond_the_receivers_limit_is_refused()
    {
        var registry = Registry(out var receiver, out _);
        var limit = new SharedSignalsOptions().MaxStreamsPerReceiver;
        for (var i = 0; i < limit; i++)
        {
            Assert.NotNull(registry.TryCreate(receiver, null, null));
        }

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

    // ---- our own events (SsfProtocol): token and key revocation -------------------------------------------------

    [Fact]
    public async Task SSF_3_5_1_a_revoked_access_token_is_named_by_a_jwt_id_subject_of_its_iss_and_jti_not_as_a_session()
    {
        var (_, claims, _) = await SignAsync(Stream("api://orders"), AccessTokenRevoked());
        var subject = claims.GetProperty("sub_id");
        Assert.Equal("jwt_id", subject.GetProperty("format").GetString());
        Assert.Equal(Issuer, subject.GetProperty("iss").GetString()); // the iss of the token: ours
        Assert.Equal("at-jti-1", subject.GetProperty("jti").GetString());
        Assert.False(subject.TryGetProperty("session", out _));

        // CAEP 1.0 §3.1: session-revoked revokes "the session identified by the subject"; the token's session goes on, so
        // the event is ours, and a receiver that knows only CAEP ends nothing.
        var events = claims.GetProperty("events");
        Assert.False(events.TryGetProperty(SsfProtocol.SessionRevokedEventType, out _));
        var revoked = events.GetProperty(SsfProtocol.AccessTokenRevokedEventType);
        Assert.Equal(EndedAt.ToUnixTimeSeconds(), revoked.GetProperty("event_timestamp").GetInt64());
        Assert.Equal(EndedAt.AddMinutes(10).ToUnixTimeSeconds(), revoked.GetProperty("token_exp").GetInt64());
    }

    [Fact]
    public async Task A_revoked_signing_key_is_named_by_an_opaque_subject_of_its_kid_with_the_jwks_to_refetch()
    {
        var (_, claims, _) = await SignAsync(Stream("api://orders"), SigningKeyRevoked());
        Assert.Equal("opaque", claims.GetProperty("sub_id").GetProperty("format").GetString()); // RFC 9493 §3.2.2
        Assert.Equal("kid-1", claims.GetProperty("sub_id").GetProperty("id").GetString());
        var revoked = claims.GetProperty("events").GetProperty(SsfProtocol.SigningKeyRevokedEventType);
        Assert.Equal("kid-1", revoked.GetProperty("kid").GetString());
        Assert.Equal(Issuer + "/.well-known/jwks.json", revoked.GetProperty("jwks_uri").GetString());
        Assert.Equal(EndedAt.ToUnixTimeSeconds(), revoked.GetProperty("event_timestamp").GetInt64());
    }

    [Theory]
    [InlineData(SsfProtocol.AccessTokenRevokedEventType, "system", "revoked_by_client")]
    [InlineData(SsfProtocol.SigningKeyRevokedEventType, "admin", "signing_key_revoked")]
    public async Task CAEP_2_our_events_carry_initiating_entity_and_reason_admin_with_the_caep_meaning(string eventType, string initiator, string reason)
    {
        var (_, claims, _) = await SignAsync(Stream("api://orders"), Entry(eventType));
        var body = claims.GetProperty("events").GetProperty(eventType);
        Assert.Equal(initiator, body.GetProperty("initiating_entity").GetString());
        Assert.Equal(reason, body.GetProperty("reason_admin").GetProperty("en").GetString());
    }

    [Fact]
    public void SSF_4_1_9_one_change_is_one_txn_across_streams_and_every_set_has_its_own_jti()
    {
        var registry = Registry(out var orders, out var billing);
        var ordersStream = registry.TryCreate(orders, null, null)!;
        var billingStream = registry.TryCreate(billing, null, null)!;
        var signals = Signals(registry);

        signals.AccessTokenRevoked("at-1", ["api://orders", "api://billing"], EndedAt.AddMinutes(5));
        signals.SigningKeyRevoked("kid-1");

        var ordersEvents = Held(ordersStream);
        var billingEvents = Held(billingStream);
        Assert.Equal(2, ordersEvents.Count);
        Assert.Equal(2, billingEvents.Count);
        var all = ordersEvents.Concat(billingEvents).ToList();
        Assert.Equal(all.Count, all.Select(e => e.Jti).Distinct().Count()); // RFC 8417 §2.2
        Assert.Equal(ordersEvents[0].Txn, billingEvents[0].Txn); // the token's revocation, on both streams
        Assert.Equal(ordersEvents[1].Txn, billingEvents[1].Txn); // the key's
        Assert.NotEqual(ordersEvents[0].Txn, ordersEvents[1].Txn); // two changes, two txn
        Assert.Equal("at-1", ordersEvents[0].RevokedId);
        Assert.Equal("kid-1", ordersEvents[1].RevokedId);
    }

    [Fact]
    public void Only_streams_of_receivers_sharing_an_audience_with_a_revoked_access_token_are_told_of_it()
    {
        var registry = Registry(out var orders, out var billing);
        var ordersStream = registry.TryCreate(orders, null, null)!;
        var billingStream = registry.TryCreate(billing, null, null)!;

        Signals(registry).AccessTokenRevoked("at-b", ["api://billing"], EndedAt.AddMinutes(5));

        Assert.Equal(0, ordersStream.Pending);
        var told = Assert.Single(Held(billingStream));
        Assert.Equal(SsfProtocol.AccessTokenRevokedEventType, told.EventType);
        Assert.Equal(EndedAt.AddMinutes(5), told.RevokedUntil);
    }

    [Fact]
    public void A_revoked_signing_key_is_told_to_every_stream_whatever_its_audiences()
    {
        var registry = Registry(out var orders, out var billing);
        var streams = new[] { registry.TryCreate(orders, null, null)!, registry.TryCreate(billing, null, null)! };

        Signals(registry).SigningKeyRevoked("kid-9");

        Assert.All(streams, stream => Assert.Equal(SsfProtocol.SigningKeyRevokedEventType, Assert.Single(Held(stream)).EventType));
    }

    [Fact]
    public void SSF_8_1_1_a_stream_gets_only_the_event_types_it_delivers()
    {
        // events_delivered: "the set of events that the Transmitter MUST include in the stream", so only those.
        var registry = Registry(out var orders, out var billing);
        var sessionsOnly = registry.TryCreate(orders, [SsfProtocol.SessionRevokedEventType], null)!;
        var everything = registry.TryCreate(billing, null, null)!;
        Assert.Equal([SsfProtocol.SessionRevokedEventType], sessionsOnly.EventsDelivered);
        Assert.Contains(SsfProtocol.AccessTokenRevokedEventType, everything.EventsDelivered);

        var signals = Signals(registry);
        signals.AccessTokenRevoked("at-2", ["api://orders", "api://billing"], EndedAt.AddMinutes(5));
        signals.SigningKeyRevoked("kid-2");

        Assert.Equal(0, sessionsOnly.Pending);
        Assert.Equal(2, everything.Pending);
    }

    [Fact]
    public void An_access_token_revoked_after_its_exp_is_not_announced()
    {
        // Like idle and absolute expiry (CAEP session-revoked is not sent for them either): its exp refuses it already.
        var registry = Registry(out var orders, out _);
        var stream = registry.TryCreate(orders, null, null)!;

        Signals(registry).AccessTokenRevoked("at-old", ["api://orders"], EndedAt);

        Assert.Equal(0, stream.Pending);
    }

    // ---- through HTTP on the host (the rest of the stream API: SsfStreamApiConformanceTests, on every host) --------

    [Fact]
    public async Task An_operators_key_revocation_reaches_every_receiver_naming_the_kid_signed_by_a_key_still_published()
    {
        var orders = await CreateStreamAsync(OrdersApi, "{}");
        var billing = await CreateStreamAsync(SharedSignalsHostFixture.BillingApi, "{}");
        var login = await Host.LoginAsync("ssf-key-revoked", audience: "api://orders");
        var kid = Part(login.AccessToken.Split('.')[0]).GetProperty("kid").GetString()!;

        using (var revoke = await Host.PostFormAsync("/management/keys/" + kid + "/revoke", [], Basic("ops", OpsSecret)))
        {
            Assert.Equal(HttpStatusCode.OK, revoke.StatusCode);
        }

        foreach (var (receiver, stream) in new[] { (OrdersApi, orders), (SharedSignalsHostFixture.BillingApi, billing) })
        {
            var set = Assert.Single(await PollAsync(receiver, stream), s => Part(s.Split('.')[1]).GetProperty("events").TryGetProperty(SsfProtocol.SigningKeyRevokedEventType, out _));
            var claims = Part(set.Split('.')[1]);
            Assert.Equal(kid, claims.GetProperty("sub_id").GetProperty("id").GetString());
            Assert.Equal(kid, claims.GetProperty("events").GetProperty(SsfProtocol.SigningKeyRevokedEventType).GetProperty("kid").GetString());

            // SSF 1.0 §4.1.4: verifiable with the JWKS as it is now, without the revoked key.
            var header = Part(set.Split('.')[0]);
            Assert.NotEqual(kid, header.GetProperty("kid").GetString());
            var keys = await Host.Services.GetRequiredService<ISigningKeyService>().GetKeySetAsync(default);
            Assert.Null(keys.Find(kid));
            var key = keys.Find(header.GetProperty("kid").GetString()!);
            Assert.NotNull(key);
            var lastDot = set.LastIndexOf('.');
            Assert.True(key.VerifySignature(Encoding.ASCII.GetBytes(set[..lastDot]), Base64UrlEncoding.DecodeStrict(set.AsSpan(lastDot + 1))!));
        }
    }

    private const string OrdersApi = SsfStreamApiClient.OrdersApi;

    private Task<string> CreateStreamAsync(string receiver, string body) => SsfStreamApiClient.CreateStreamAsync(Host, receiver, body);

    private Task<List<string>> PollAsync(string receiver, string stream) => SsfStreamApiClient.PollAsync(Host, receiver, stream);

    /// <summary>The event source of <paramref name="registry"/>'s streams, on a clock at <see cref="EndedAt"/>.</summary>
    private static SsfRevocationSignals Signals(SsfStreamRegistry registry) =>
        new(registry, new Clients(OrdersClient, BillingClient), new FakeTimeProvider(EndedAt));

    private static List<SsfOutboxEntry> Held(SsfStream stream)
    {
        lock (stream.Gate)
        {
            return stream.PollLocked([], 100).Batch;
        }
    }

    private static readonly RegisteredClient OrdersClient = new() { ClientId = "api", Type = ClientType.ResourceServer, AllowedAudiences = ["api://orders"] };

    private static readonly RegisteredClient BillingClient = new() { ClientId = "billing-api", Type = ClientType.ResourceServer, AllowedAudiences = ["api://billing"] };

    private static SsfStreamRegistry Registry(out RegisteredClient orders, out RegisteredClient billing)
    {
        orders = OrdersClient;
        billing = BillingClient;
        return new SsfStreamRegistry(new Clients(orders, billing), Options.Create(new SharedSignalsOptions { Enabled = true }), NullLogger<SsfStreamRegistry>.Instance);
    }

    private sealed class Clients(params RegisteredClient[] clients) : IClientStore
    {
        public RegisteredClient? Find(string clientId) => clients.FirstOrDefault(c => c.ClientId == clientId);

        public bool IsAllowedOrigin(string origin) => false;
    }
}
