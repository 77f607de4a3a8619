using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Microsoft.IdentityModel.JsonWebTokens;
using TokenService.Tests.Hardening;
using TokenService.Tests.Infrastructure;
using TokenService.Validation;
using static TokenService.Tests.Infrastructure.TokenServiceTestHost;

namespace TokenService.Tests.SharedSignals;

public sealed class SharedSignalsReceiverTests(SharedSignalsPushHostFixture fixture) : SharedSignalsReceiverTests<SharedSignalsPushHostFixture>(fixture);

/// <summary>The same receiver against the Functions app's transmitter (its HTTP functions in-process, its push service started).</summary>
public sealed class SharedSignalsReceiverTestsOnFunctions(SharedSignalsPushFunctionsHostFixture fixture) : SharedSignalsReceiverTests<SharedSignalsPushFunctionsHostFixture>(fixture);

// The real Functions host tier is left out: the API's clock is a FakeTimeProvider the tests move, and the health window
// and the poll cadence are measured on it, while that host's transmitter and push back-off run on its own process clock.

/// <summary>
/// The library's Shared Signals receiver (docs/shared-signals.md, "The receiver") against the service's own transmitter:
/// an API with <c>SharedSignals.Delivery</c> Poll or Push on a fake clock, the token service on its own. Each test starts
/// from no stream for the "api" receiver, so the API creates its own. The fake clock is moved by the tests only; a hang
/// guard (no clock) waits for what the receiver does in the background.
/// </summary>
public abstract class SharedSignalsReceiverTests<TFixture>(TFixture fixture) : IClassFixture<TFixture>
    where TFixture : SharedSignalsPushHostFixture
{
    private static readonly TimeSpan PollInterval = TimeSpan.FromSeconds(2);

    private TokenServiceTestHost Host => fixture.Host;

    [Fact]
    public async Task A_poll_receiver_refuses_a_token_at_the_next_poll_after_a_force_logout_without_waiting_for_the_status_cache()
    {
        await DeleteStreamsAsync();
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var api = await ReceiverApi.StartAsync(Host, SharedSignalsDelivery.Poll, time, statusCache: TimeSpan.FromSeconds(30));
        await api.WaitForAsync(() => api.Receiver.IsHealthy);

        var login = await Host.LoginAsync("rcv-forced", audience: "api://orders");
        Assert.Equal(HttpStatusCode.OK, await api.GetOrdersAsync(login.AccessToken));
        await RevokeUserAsync("rcv-forced");

        // Cached for 30 s without the receiver; the next poll, 2 s on, brings the session-revoked SET.
        Assert.Equal(HttpStatusCode.OK, await api.GetOrdersAsync(login.AccessToken));
        await StepAsync(api, time, PollInterval);
        Assert.True(api.Receiver.State.IsSessionRevoked(SessionOf(login.AccessToken), time.GetUtcNow()));
        var introspections = api.Backchannel.Introspections;
        Assert.Equal(HttpStatusCode.Unauthorized, await api.GetOrdersAsync(login.AccessToken));
        Assert.Equal(introspections, api.Backchannel.Introspections);
    }

    [Fact]
    public async Task RFC8936_2_4_a_polled_set_the_receiver_refuses_is_reported_in_setErrs_and_the_transmitter_sends_it_no_more()
    {
        await DeleteStreamsAsync();
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var api = await ReceiverApi.StartAsync(Host, SharedSignalsDelivery.Poll, time, statusCache: TimeSpan.FromSeconds(30));
        await api.WaitForAsync(() => api.Receiver.IsHealthy);

        await Host.LoginAsync("rcv-seterrs", audience: "api://orders");
        api.Backchannel.AlterNextPolledSet = true;
        await RevokeUserAsync("rcv-seterrs");

        // The next poll brings the SET altered: the receiver refuses it, and reports it with the following poll.
        await StepAsync(api, time, PollInterval);
        var altered = api.Backchannel.Altered;
        Assert.NotNull(altered);
        await StepAsync(api, time, PollInterval);
        await StepAsync(api, time, PollInterval);

        var reported = api.Backchannel.Polls
            .Select(body => System.Text.Json.Nodes.JsonNode.Parse(body)!["setErrs"]?[altered!])
            .Where(error => error is not null)
            .ToList();
        var error = Assert.Single(reported);
        Assert.Equal("invalid_key", error!["err"]!.GetValue<string>());
        Assert.False(string.IsNullOrEmpty(error["description"]!.GetValue<string>()));
        Assert.Single(api.Backchannel.Polled, jti => jti == altered);
    }

    [Fact]
    public async Task A_push_receiver_refuses_a_token_as_soon_as_the_revocation_of_its_refresh_token_is_pushed()
    {
        await DeleteStreamsAsync();
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var api = await StartPushApiAsync(time, TimeSpan.FromSeconds(30));
        await api.WaitForAsync(() => api.Receiver.IsHealthy);

        var login = await Host.LoginAsync("rcv-pushed", audience: "api://orders");
        Assert.Equal(HttpStatusCode.OK, await api.GetOrdersAsync(login.AccessToken));
        using (var revoke = await Host.PostFormAsync("/oauth2/revoke", [new("token", login.RefreshToken)], Basic("web", WebSecret)))
        {
            Assert.Equal(HttpStatusCode.OK, revoke.StatusCode);
        }

        // No clock moves: the push alone ends the session at the API.
        var sid = SessionOf(login.AccessToken);
        await api.WaitForAsync(() => api.Receiver.State.IsSessionRevoked(sid, time.GetUtcNow()));
        Assert.Equal(HttpStatusCode.Unauthorized, await api.GetOrdersAsync(login.AccessToken));
    }

    [Fact]
    public async Task Pushed_sets_that_are_forged_or_name_another_audience_issuer_or_type_are_refused_with_rfc_8935_codes_and_a_replay_counts_once()
    {
        await DeleteStreamsAsync();
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var api = await StartPushApiAsync(time, TimeSpan.FromSeconds(30));
        await api.WaitForAsync(() => api.Receiver.IsHealthy);
        var kid = await Crafted.ServiceKidAsync(Host);
        var header = $$"""{"alg":"RS256","kid":"{{kid}}","typ":"secevent+jwt"}""";
        string Payload(string sid, string iss = Issuer, string aud = "api://orders") =>
            "{\"iss\":\"" + iss + "\",\"aud\":\"" + aud + "\",\"jti\":\"" + Guid.NewGuid().ToString("N") + "\",\"iat\":" + time.GetUtcNow().ToUnixTimeSeconds()
            + ",\"sub_id\":{\"format\":\"complex\",\"session\":{\"format\":\"opaque\",\"id\":\"" + sid + "\"}},\"events\":{\"https://schemas.openid.net/secevent/caep/event-type/session-revoked\":{}}}";

        using var otherKey = System.Security.Cryptography.RSA.Create(2048);
        string SignWithOtherKey(string headerJson, string payload)
        {
            var input = Crafted.B64(headerJson) + "." + Crafted.B64(payload);
            return input + "." + TokenService.Jose.Base64UrlEncoding.Encode(otherKey.SignData(Encoding.ASCII.GetBytes(input), System.Security.Cryptography.HashAlgorithmName.SHA256, System.Security.Cryptography.RSASignaturePadding.Pkcs1));
        }

        var cases = new (string Name, string Set, string Error)[]
        {
            ("signed by another key under the service's kid", SignWithOtherKey(header, Payload("forged-1")), "invalid_key"),
            ("signed by another key under an unknown kid", SignWithOtherKey("""{"alg":"RS256","kid":"not-a-service-key","typ":"secevent+jwt"}""", Payload("forged-2")), "invalid_key"),
            ("another audience", await Crafted.SignByServiceAsync(Host, Payload("aud-1", aud: "api://billing"), header), "invalid_audience"),
            ("another issuer", await Crafted.SignByServiceAsync(Host, Payload("iss-1", iss: "https://evil.example"), header), "invalid_issuer"),
            ("an access token's typ", await Crafted.SignByServiceAsync(Host, Payload("typ-1"), $$"""{"alg":"RS256","kid":"{{kid}}","typ":"at+jwt"}"""), "invalid_request"),
            ("a crit header", await Crafted.SignByServiceAsync(Host, Payload("crit-1"), $$"""{"alg":"RS256","kid":"{{kid}}","typ":"secevent+jwt","crit":["urn:x"],"urn:x":1}"""), "invalid_request"),
            ("not strict base64url", await Crafted.SignByServiceAsync(Host, Payload("pad-1"), header) + "=", "invalid_request"),
        };
        foreach (var (name, set, error) in cases)
        {
            using var response = await PushAsync(api, set, api.Receiver.PushAuthorization);
            var body = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{name}: {(int)response.StatusCode} {body}");
            using var json = JsonDocument.Parse(body);
            Assert.True(error == json.RootElement.GetProperty("err").GetString(), $"{name}: {body}");
            Assert.False(string.IsNullOrEmpty(json.RootElement.GetProperty("description").GetString()));
        }

        foreach (var sid in new[] { "forged-1", "forged-2", "aud-1", "iss-1", "typ-1", "crit-1", "pad-1" })
        {
            Assert.False(api.Receiver.State.IsSessionRevoked(sid, time.GetUtcNow()), sid);
        }

        // A valid SET is accepted (202) and acted on; the same SET again is 202 too (RFC 8935 §2.2) but counted once.
        var valid = await Crafted.SignByServiceAsync(Host, Payload("valid-1"), header);
        var duplicates = api.Receiver.DuplicateSets;
        for (var i = 0; i < 2; i++)
        {
            using var response = await PushAsync(api, valid, api.Receiver.PushAuthorization);
            Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        }

        Assert.True(api.Receiver.State.IsSessionRevoked("valid-1", time.GetUtcNow()));
        Assert.Equal(duplicates + 1, api.Receiver.DuplicateSets);

        // The Authorization header the transmitter was given, and only it: 401 without, 403 with another.
        using (var none = await PushAsync(api, valid, null))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, none.StatusCode);
        }

        using (var wrong = await PushAsync(api, valid, api.Receiver.PushAuthorization[..^1] + "x"))
        {
            Assert.Equal(HttpStatusCode.Forbidden, wrong.StatusCode);
        }

        using var request = new HttpRequestMessage(HttpMethod.Post, "/ssf/events") { Content = new StringContent(valid, Encoding.ASCII, "application/json") };
        request.Headers.TryAddWithoutValidation("Authorization", api.Receiver.PushAuthorization);
        using var wrongType = await api.Client.SendAsync(request);
        Assert.Equal(HttpStatusCode.BadRequest, wrongType.StatusCode);
        Assert.Equal("invalid_request", (await JsonAsync(wrongType)).GetProperty("err").GetString());
    }

    [Fact]
    public async Task A_set_held_for_an_hour_is_still_acted_on_one_from_the_future_is_refused_and_an_unknown_event_is_accepted_and_ignored()
    {
        await DeleteStreamsAsync();
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var api = await StartPushApiAsync(time, TimeSpan.FromSeconds(30));
        await api.WaitForAsync(() => api.Receiver.IsHealthy);
        var kid = await Crafted.ServiceKidAsync(Host);
        var header = $$"""{"alg":"RS256","kid":"{{kid}}","typ":"secevent+jwt"}""";
        string Payload(string sid, DateTimeOffset iat, string eventType) =>
            "{\"iss\":\"" + Issuer + "\",\"aud\":\"api://orders\",\"jti\":\"" + Guid.NewGuid().ToString("N") + "\",\"iat\":" + iat.ToUnixTimeSeconds()
            + ",\"sub_id\":{\"format\":\"opaque\",\"id\":\"" + sid + "\"},\"events\":{\"" + eventType + "\":{}}}";
        const string revoked = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";

        // Signed at its first transmission an hour ago and held through an outage: a revocation all the same.
        using (var held = await PushAsync(api, await Crafted.SignByServiceAsync(Host, Payload("held-1", time.GetUtcNow().AddHours(-1), revoked), header), api.Receiver.PushAuthorization))
        {
            Assert.Equal(HttpStatusCode.Accepted, held.StatusCode);
        }

        Assert.True(api.Receiver.State.IsSessionRevoked("held-1", time.GetUtcNow()));

        using (var future = await PushAsync(api, await Crafted.SignByServiceAsync(Host, Payload("future-1", time.GetUtcNow().AddHours(1), revoked), header), api.Receiver.PushAuthorization))
        {
            Assert.Equal(HttpStatusCode.BadRequest, future.StatusCode);
            Assert.Equal("invalid_request", (await JsonAsync(future)).GetProperty("err").GetString());
        }

        Assert.False(api.Receiver.State.IsSessionRevoked("future-1", time.GetUtcNow()));

        // RFC 8417 §2.2: an event type the receiver does not know is accepted and ignored.
        using (var unknown = await PushAsync(api, await Crafted.SignByServiceAsync(Host, Payload("unknown-1", time.GetUtcNow(), "urn:example:event:unknown"), header), api.Receiver.PushAuthorization))
        {
            Assert.Equal(HttpStatusCode.Accepted, unknown.StatusCode);
        }

        Assert.False(api.Receiver.State.IsSessionRevoked("unknown-1", time.GetUtcNow()));
    }

    [Fact]
    public async Task A_healthy_stream_trusts_a_cached_status_beyond_the_status_cache_duration_without_introspecting_again()
    {
        await DeleteStreamsAsync();
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var api = await ReceiverApi.StartAsync(Host, SharedSignalsDelivery.Poll, time, statusCache: TimeSpan.FromSeconds(5));
        await api.WaitForAsync(() => api.Receiver.IsHealthy);
        var login = await Host.LoginAsync("rcv-trusted", audience: "api://orders");
        Assert.Equal(HttpStatusCode.OK, await api.GetOrdersAsync(login.AccessToken));
        var introspections = api.Backchannel.Introspections;

        // 12 s on (more than twice StatusCacheDuration), the stream polled all along: the cached status holds.
        for (var i = 0; i < 6; i++)
        {
            await StepAsync(api, time, PollInterval);
        }

        Assert.True(api.Receiver.IsHealthy);
        Assert.Equal(HttpStatusCode.OK, await api.GetOrdersAsync(login.AccessToken));
        Assert.Equal(introspections, api.Backchannel.Introspections);
    }

    [Fact]
    public async Task A_paused_stream_turns_unhealthy_after_the_health_window_and_a_revocation_it_never_delivered_is_then_learned_by_introspection()
    {
        await DeleteStreamsAsync();
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var api = await ReceiverApi.StartAsync(Host, SharedSignalsDelivery.Poll, time, statusCache: TimeSpan.FromSeconds(5), verificationInterval: TimeSpan.FromSeconds(4));
        await api.WaitForAsync(() => api.Receiver.IsHealthy);
        var login = await Host.LoginAsync("rcv-paused", audience: "api://orders");
        Assert.Equal(HttpStatusCode.OK, await api.GetOrdersAsync(login.AccessToken));

        // Delivery stops: the stream is paused (SSF 1.0 §8.1.2, events held), then the session ends.
        using (var pause = await StreamApiAsync(HttpMethod.Post, "/ssf/streams/status", $$"""{"stream_id":"{{api.Receiver.StreamId}}","status":"paused"}"""))
        {
            Assert.Equal(HttpStatusCode.OK, pause.StatusCode);
        }

        await RevokeUserAsync("rcv-paused");

        // Within the health window (the verification asked for at 0 s answered, 2 × 4 s): still trusted, 6 s on.
        for (var i = 0; i < 3; i++)
        {
            await StepAsync(api, time, PollInterval);
        }

        Assert.True(api.Receiver.IsHealthy);
        Assert.Equal(HttpStatusCode.OK, await api.GetOrdersAsync(login.AccessToken));

        // Past it (10 s; the verifications asked at 4 s and 8 s never came back): bounded staleness, so the status
        // learned 10 s ago (more than StatusCacheDuration) is asked again, and the token is refused.
        for (var i = 0; i < 2; i++)
        {
            await StepAsync(api, time, PollInterval);
        }

        Assert.False(api.Receiver.IsHealthy);
        var introspections = api.Backchannel.Introspections;
        Assert.Equal(HttpStatusCode.Unauthorized, await api.GetOrdersAsync(login.AccessToken));
        Assert.Equal(introspections + 1, api.Backchannel.Introspections);
    }

    [Fact]
    public async Task When_polls_fail_the_cache_falls_back_to_the_status_cache_duration_after_the_poll_window()
    {
        await DeleteStreamsAsync();
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var api = await ReceiverApi.StartAsync(Host, SharedSignalsDelivery.Poll, time, statusCache: TimeSpan.FromSeconds(5));
        await api.WaitForAsync(() => api.Receiver.IsHealthy);
        var login = await Host.LoginAsync("rcv-poll-fails", audience: "api://orders");
        Assert.Equal(HttpStatusCode.OK, await api.GetOrdersAsync(login.AccessToken));
        api.Backchannel.FailPolls = true;
        await RevokeUserAsync("rcv-poll-fails");

        // The window for poll is 2 × PollInterval + the poll timeout (10 s): 14 s after the last poll that succeeded.
        for (var i = 0; i < 8; i++)
        {
            await StepAsync(api, time, PollInterval);
        }

        Assert.False(api.Receiver.IsHealthy);
        Assert.Equal(HttpStatusCode.Unauthorized, await api.GetOrdersAsync(login.AccessToken));
    }

    [Fact]
    public async Task A_push_stream_whose_pushes_stop_arriving_turns_unhealthy_after_the_health_window_and_falls_back()
    {
        await DeleteStreamsAsync();
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var api = await StartPushApiAsync(time, TimeSpan.FromSeconds(5), verificationInterval: TimeSpan.FromSeconds(4));
        await api.WaitForAsync(() => api.Receiver.IsHealthy);
        var login = await Host.LoginAsync("rcv-push-stops", audience: "api://orders");
        Assert.Equal(HttpStatusCode.OK, await api.GetOrdersAsync(login.AccessToken));

        // The API's push endpoint becomes unreachable for the transmitter; the session then ends.
        fixture.Receiver.Answer = (_, _, _) => Task.FromResult(new HttpResponseMessage(HttpStatusCode.ServiceUnavailable));
        await RevokeUserAsync("rcv-push-stops");

        // Verifications asked at 4 s and 8 s never come back; at 9 s the one answered (asked at 0 s) is too old.
        await StepAsync(api, time, TimeSpan.FromSeconds(4));
        await StepAsync(api, time, TimeSpan.FromSeconds(4));
        Assert.True(api.Receiver.IsHealthy);
        Assert.Equal(HttpStatusCode.OK, await api.GetOrdersAsync(login.AccessToken));
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.False(api.Receiver.IsHealthy);
        Assert.Equal(HttpStatusCode.Unauthorized, await api.GetOrdersAsync(login.AccessToken));
    }

    [Fact]
    public async Task A_status_learned_across_a_gap_is_held_to_the_status_cache_duration_after_the_stream_is_healthy_again()
    {
        await DeleteStreamsAsync();
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var api = await ReceiverApi.StartAsync(Host, SharedSignalsDelivery.Poll, time, statusCache: TimeSpan.FromSeconds(5));
        await api.WaitForAsync(() => api.Receiver.IsHealthy);

        // A gap: polls fail long enough for the stream to turn unhealthy, and a status is learned meanwhile.
        api.Backchannel.FailPolls = true;
        for (var i = 0; i < 8; i++)
        {
            await StepAsync(api, time, PollInterval);
        }

        Assert.False(api.Receiver.IsHealthy);
        var login = await Host.LoginAsync("rcv-gap", audience: "api://orders");
        Assert.Equal(HttpStatusCode.OK, await api.GetOrdersAsync(login.AccessToken));
        var introspections = api.Backchannel.Introspections;

        // Healthy again, but an event of the gap may have been missed: that status is not trusted beyond 5 s.
        api.Backchannel.FailPolls = false;
        await StepAsync(api, time, PollInterval);
        Assert.True(api.Receiver.IsHealthy);
        for (var i = 0; i < 3; i++)
        {
            await StepAsync(api, time, PollInterval);
        }

        Assert.Equal(HttpStatusCode.OK, await api.GetOrdersAsync(login.AccessToken));
        Assert.Equal(introspections + 1, api.Backchannel.Introspections);
    }

    [Fact]
    public async Task The_api_starts_while_the_token_service_is_down_and_becomes_healthy_once_it_is_back()
    {
        await DeleteStreamsAsync();
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var api = await ReceiverApi.StartAsync(Host, SharedSignalsDelivery.Poll, time, statusCache: TimeSpan.FromSeconds(30), before: b => b.Down = true);
        await api.WaitForAsync(() => api.Receiver.LastCycleStartedAt is not null);
        Assert.False(api.Receiver.IsHealthy);
        Assert.Null(api.Receiver.StreamId);

        // Retried on a back-off (1 s, then 2 s): still down at the first retry, back for the second.
        await StepAsync(api, time, TimeSpan.FromSeconds(1));
        Assert.Null(api.Receiver.StreamId);
        api.Backchannel.Down = false;
        await StepAsync(api, time, TimeSpan.FromSeconds(2));
        await api.WaitForAsync(() => api.Receiver.IsHealthy);
        Assert.NotNull(api.Receiver.StreamId);
        var login = await Host.LoginAsync("rcv-late", audience: "api://orders");
        Assert.Equal(HttpStatusCode.OK, await api.GetOrdersAsync(login.AccessToken));
    }

    [Fact]
    public async Task A_receiver_adopts_the_stream_of_its_description_and_gives_it_its_push_endpoint_and_a_new_secret()
    {
        await DeleteStreamsAsync();
        string existing;
        using (var created = await StreamApiAsync(HttpMethod.Post, "/ssf/streams", """{"description":"receiver tests"}"""))
        {
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
            existing = (await JsonAsync(created)).GetProperty("stream_id").GetString()!;
        }

        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var api = await StartPushApiAsync(time, TimeSpan.FromSeconds(30));
        await api.WaitForAsync(() => api.Receiver.IsHealthy);
        Assert.Equal(existing, api.Receiver.StreamId);
        using var read = await StreamApiAsync(HttpMethod.Get, "/ssf/streams?stream_id=" + existing, null);
        var delivery = (await JsonAsync(read)).GetProperty("delivery");
        Assert.Equal("urn:ietf:rfc:8935", delivery.GetProperty("method").GetString());
        Assert.Equal("https://orders.test.example/ssf/events", delivery.GetProperty("endpoint_url").GetString());
    }

    [Fact]
    public async Task A_stream_refused_with_409_beyond_the_receivers_limit_is_logged_and_leaves_the_receiver_on_bounded_staleness()
    {
        await DeleteStreamsAsync();
        // Other instances hold every stream the transmitter allows this receiver (SharedSignals:MaxStreamsPerReceiver).
        for (var i = 0; i < new TokenService.Configuration.SharedSignalsOptions().MaxStreamsPerReceiver; i++)
        {
            using var other = await StreamApiAsync(HttpMethod.Post, "/ssf/streams", "{\"description\":\"another instance " + i + "\"}");
            Assert.Equal(HttpStatusCode.Created, other.StatusCode);
        }

        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var api = await ReceiverApi.StartAsync(Host, SharedSignalsDelivery.Poll, time, statusCache: TimeSpan.FromSeconds(5));
        await api.WaitForAsync(() => api.Receiver.LastCycleStartedAt is not null);
        Assert.Null(api.Receiver.StreamId);
        Assert.False(api.Receiver.IsHealthy);
        var conflict = Assert.Single(api.Logs.Entries, e => e.Id.Id == 7010);
        Assert.Equal(Microsoft.Extensions.Logging.LogLevel.Warning, conflict.Level);

        // Bounded staleness: a status is asked again after StatusCacheDuration.
        var login = await Host.LoginAsync("rcv-conflict", audience: "api://orders");
        Assert.Equal(HttpStatusCode.OK, await api.GetOrdersAsync(login.AccessToken));
        time.Advance(TimeSpan.FromSeconds(6));
        Assert.Equal(HttpStatusCode.OK, await api.GetOrdersAsync(login.AccessToken));
        Assert.Equal(2, api.Backchannel.Introspections);
    }

    [Fact]
    public async Task The_apis_health_check_reports_its_stream_healthy_degraded_while_polls_fail_past_the_window_and_healthy_again_after()
    {
        await DeleteStreamsAsync();
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var api = await ReceiverApi.StartAsync(Host, SharedSignalsDelivery.Poll, time, statusCache: TimeSpan.FromSeconds(5));
        await api.WaitForAsync(() => api.Receiver.IsHealthy);
        Assert.Equal((HttpStatusCode.OK, "Healthy"), await api.HealthAsync());

        // Degraded, not Unhealthy: the session check stays safe on bounded staleness, so the API is not taken out.
        api.Backchannel.FailPolls = true;
        for (var i = 0; i < 8; i++)
        {
            await StepAsync(api, time, PollInterval);
        }

        Assert.False(api.Receiver.IsHealthy);
        Assert.Equal((HttpStatusCode.OK, "Degraded"), await api.HealthAsync());

        api.Backchannel.FailPolls = false;
        for (var i = 0; i < 10 && !api.Receiver.IsHealthy; i++)
        {
            await StepAsync(api, time, PollInterval);
        }

        Assert.Equal((HttpStatusCode.OK, "Healthy"), await api.HealthAsync());
    }

    [Fact]
    public async Task Without_a_delivery_the_session_check_keeps_no_stream_and_bounded_staleness()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var api = await ReceiverApi.StartAsync(Host, SharedSignalsDelivery.None, time, statusCache: TimeSpan.FromSeconds(5));
        var login = await Host.LoginAsync("rcv-none", audience: "api://orders");
        Assert.Equal(HttpStatusCode.OK, await api.GetOrdersAsync(login.AccessToken));
        time.Advance(TimeSpan.FromSeconds(6));
        Assert.Equal(HttpStatusCode.OK, await api.GetOrdersAsync(login.AccessToken));
        Assert.Equal(2, api.Backchannel.Introspections);
        Assert.Equal(0, api.Backchannel.SharedSignalsRequests);
        using var push = await api.Client.PostAsync("/ssf/events", new StringContent("x"));
        Assert.Equal(HttpStatusCode.NotFound, push.StatusCode);
        Assert.Equal((HttpStatusCode.OK, "Healthy"), await api.HealthAsync()); // no stream to watch
    }

    [Fact]
    public async Task A_token_issued_while_the_stream_is_healthy_is_accepted_without_introspection_and_refused_at_the_next_poll_after_its_own_revocation()
    {
        await DeleteStreamsAsync();
        // The API's clock starts a few seconds behind the token service's (the system clock), with no skew allowed, so
        // that the stream is healthy from before the token's iat and the token's nbf is reached after a few polls.
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow - TimeSpan.FromSeconds(5));
        await using var api = await ReceiverApi.StartAsync(Host, SharedSignalsDelivery.Poll, time, statusCache: TimeSpan.FromSeconds(30), clockSkew: TimeSpan.Zero);
        await api.WaitForAsync(() => api.Receiver.IsHealthy);
        for (var i = 0; i < 5; i++)
        {
            await StepAsync(api, time, PollInterval);
        }

        Assert.True(api.Receiver.IsHealthy);
        var login = await Host.LoginAsync("rcv-fresh", audience: "api://orders");
        var introspections = api.Backchannel.Introspections;
        Assert.Equal(HttpStatusCode.OK, await api.GetOrdersAsync(login.AccessToken));
        Assert.Equal(introspections, api.Backchannel.Introspections);

        // RFC 7009: the client revokes the access token alone; the session goes on. The service's access-token-revoked
        // event names its jti, and the next poll brings it.
        using (var revoke = await Host.PostFormAsync("/oauth2/revoke", [new("token", login.AccessToken), new("token_type_hint", "access_token")], Basic("web", WebSecret)))
        {
            Assert.Equal(HttpStatusCode.OK, revoke.StatusCode);
        }

        await StepAsync(api, time, PollInterval);
        Assert.True(api.Receiver.State.IsTokenRevoked(new JsonWebToken(login.AccessToken).Id, time.GetUtcNow()));
        Assert.Equal(HttpStatusCode.Unauthorized, await api.GetOrdersAsync(login.AccessToken));
        Assert.Equal(introspections, api.Backchannel.Introspections);
    }

    [Fact]
    public async Task A_pushed_signing_key_revocation_makes_the_api_refuse_tokens_of_that_key_at_once_even_with_their_status_cached()
    {
        await DeleteStreamsAsync();
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var api = await StartPushApiAsync(time, TimeSpan.FromSeconds(30));
        await api.WaitForAsync(() => api.Receiver.IsHealthy);
        var login = await Host.LoginAsync("rcv-key", audience: "api://orders");
        Assert.Equal(HttpStatusCode.OK, await api.GetOrdersAsync(login.AccessToken));

        // The service's signing-key-revoked event, as it pushes it, naming the key that signed the token. (Crafted here
        // rather than by revoking the shared host's key, which other test classes use.)
        var kid = new JsonWebToken(login.AccessToken).Kid;
        var payload = "{\"iss\":\"" + Issuer + "\",\"aud\":\"api://orders\",\"jti\":\"" + Guid.NewGuid().ToString("N") + "\",\"iat\":" + time.GetUtcNow().ToUnixTimeSeconds()
            + ",\"sub_id\":{\"format\":\"opaque\",\"id\":\"" + kid + "\"},\"events\":{\"urn:uuid:2c4b0bae-9755-40ca-8bb6-5b22ceba07fc\":{\"kid\":\"" + kid + "\"}}}";
        var set = await Crafted.SignByServiceAsync(Host, payload, $$"""{"alg":"RS256","kid":"{{kid}}","typ":"secevent+jwt"}""");
        using (var response = await PushAsync(api, set, api.Receiver.PushAuthorization))
        {
            Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        }

        Assert.True(api.Receiver.State.IsKeyRevoked(kid, time.GetUtcNow()));
        Assert.Equal(HttpStatusCode.Unauthorized, await api.GetOrdersAsync(login.AccessToken));
    }

    [Fact]
    public async Task Events_the_transmitter_reports_lost_are_a_gap_and_a_cached_token_of_a_session_ended_in_it_is_refused_within_the_status_cache()
    {
        await DeleteStreamsAsync();
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var api = await ReceiverApi.StartAsync(Host, SharedSignalsDelivery.Poll, time, statusCache: TimeSpan.FromSeconds(30));
        await api.WaitForAsync(() => api.Receiver.IsHealthy);
        var login = await Host.LoginAsync("rcv-lost", audience: "api://orders");
        Assert.Equal(HttpStatusCode.OK, await api.GetOrdersAsync(login.AccessToken));
        var learnedAt = time.GetUtcNow();

        // The session ends, and its event is lost at the transmitter (as a failed outbox write or the bound would lose
        // it), which counts it on the stream.
        await RevokeUserAsync("rcv-lost");

        var registry = Host.Services.GetRequiredService<TokenService.SharedSignals.SsfStreamRegistry>();
        await registry.WhenQueuedAsync();
        var stream = (await registry.Store.GetAsync(api.Receiver.StreamId!, default))!;
        await registry.Store.ClearAsync(stream, default);
        await registry.Store.UpdateAsync(stream.StreamId, s =>
        {
            s.Dropped++;
            return true;
        }, default);

        // The receiver reads the count with its next verification: a gap. The status it cached before is held to
        // StatusCacheDuration from then on, although the stream is healthy again after the next verification.
        while (time.GetUtcNow() < learnedAt + TimeSpan.FromSeconds(31))
        {
            await StepAsync(api, time, PollInterval);
        }

        Assert.Contains(api.Logs.Entries, e => e.Id.Id == 7018);
        Assert.False(api.Receiver.State.IsSessionRevoked(SessionOf(login.AccessToken), time.GetUtcNow()));
        Assert.Equal(HttpStatusCode.Unauthorized, await api.GetOrdersAsync(login.AccessToken));
    }

    /// <summary>Moves the API's clock and waits until the receiver has run the cycle due by then.</summary>
    /// <summary>An operator ends every session of <paramref name="user"/> at the token service.</summary>
    private async Task RevokeUserAsync(string user)
    {
        using var revoke = await Host.PostFormAsync("/management/users/revoke", [new("user_id", user)], Basic("ops", OpsSecret));
        Assert.Equal(HttpStatusCode.OK, revoke.StatusCode);
    }

    private static async Task StepAsync(ReceiverApi api, FakeTimeProvider time, TimeSpan by)
    {
        time.Advance(by);
        var target = time.GetUtcNow();
        await api.WaitForAsync(() => api.Receiver.LastCycleStartedAt >= target);
    }

    /// <summary>An API in push mode, the transmitter's pushes forwarded to it (503 until it listens).</summary>
    private async Task<ReceiverApi> StartPushApiAsync(FakeTimeProvider time, TimeSpan statusCache, TimeSpan? verificationInterval = null)
    {
        ReceiverApi? started = null;
        fixture.Receiver.Answer = async (_, pushed, cancellationToken) =>
        {
            if (Volatile.Read(ref started) is not { } target)
            {
                return new HttpResponseMessage(HttpStatusCode.ServiceUnavailable);
            }

            Assert.Equal("https://orders.test.example/ssf/events", pushed.Url.AbsoluteUri);
            using var request = new HttpRequestMessage(HttpMethod.Post, pushed.Url.AbsolutePath) { Content = new StringContent(pushed.Body) };
            request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(pushed.ContentType!);
            request.Headers.TryAddWithoutValidation("Authorization", pushed.Authorization);
            return await target.Client.SendAsync(request, cancellationToken);
        };
        var api = await ReceiverApi.StartAsync(Host, SharedSignalsDelivery.Push, time, statusCache, verificationInterval);
        Volatile.Write(ref started, api);
        return api;
    }

    private static async Task<HttpResponseMessage> PushAsync(ReceiverApi api, string set, string? authorization)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/ssf/events") { Content = new StringContent(set, Encoding.ASCII) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/secevent+jwt");
        if (authorization is not null)
        {
            request.Headers.TryAddWithoutValidation("Authorization", authorization);
        }

        return await api.Client.SendAsync(request);
    }

    private async Task DeleteStreamsAsync()
    {
        using var list = await StreamApiAsync(HttpMethod.Get, "/ssf/streams", null);
        foreach (var stream in (await JsonAsync(list)).EnumerateArray())
        {
            using var deleted = await StreamApiAsync(HttpMethod.Delete, "/ssf/streams?stream_id=" + stream.GetProperty("stream_id").GetString(), null);
            Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        }
    }

    private Task<HttpResponseMessage> StreamApiAsync(HttpMethod method, string path, string? body)
    {
        var request = new HttpRequestMessage(method, path);
        if (body is not null)
        {
            request.Content = new StringContent(body, Encoding.UTF8, "application/json");
        }

        request.Headers.Authorization = Basic("api", ApiSecret);
        return Host.Client.SendAsync(request);
    }

    private static string SessionOf(string accessToken) => new JsonWebToken(accessToken).GetPayloadValue<string>("sid");
}
