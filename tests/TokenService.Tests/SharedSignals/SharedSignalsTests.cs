using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using TokenService.Tests.Infrastructure;
using static TokenService.Tests.Infrastructure.TokenServiceTestHost;

namespace TokenService.Tests.SharedSignals;

public sealed class SharedSignalsTests(SharedSignalsHostFixture fixture) : SharedSignalsTests<SharedSignalsHostFixture>(fixture);

/// <summary>The same through HTTP with the streams in Table Storage (Azurite).</summary>
public sealed class SharedSignalsTestsOnTableStorage(SharedSignalsAzuriteHostFixture fixture) : SharedSignalsTests<SharedSignalsAzuriteHostFixture>(fixture);

/// <summary>The same tests against the Functions app (its HTTP functions invoked in-process).</summary>
public sealed class SharedSignalsTestsOnFunctions(SharedSignalsFunctionsHostFixture fixture) : SharedSignalsTests<SharedSignalsFunctionsHostFixture>(fixture);

/// <summary>The same tests against the published app under a real Functions host (<see cref="RealFunctionsHostPool"/>).</summary>
[RealFunctionsHostTier]
[Collection(RealFunctionsHostCollection.Name)]
public sealed class SharedSignalsTestsOnRealHost(SharedSignalsRealFunctionsHostFixture fixture) : SharedSignalsTests<SharedSignalsRealFunctionsHostFixture>(fixture);

/// <summary>
/// The transmitter through HTTP (docs/shared-signals.md): metadata (SSF 1.0 §7.1), the stream API (§8.1) with the
/// receivers' own credentials, and poll delivery (RFC 8936) of the session-revoked SETs (CAEP 1.0 §3.1) of sessions
/// ended through the public routes. Each test starts from no stream for either receiver (they are shared per host);
/// SETs are picked out by the session they name, since other tests on the host end sessions of the same audiences.
/// </summary>
public abstract class SharedSignalsTests<TFixture>(TFixture fixture) : IClassFixture<TFixture>
    where TFixture : HostFixture
{
    private const string OrdersApi = "api";
    private const string BillingApi = SharedSignalsHostFixture.BillingApi;

    private TokenServiceTestHost Host => fixture.Host;

    [Fact]
    public async Task The_metadata_names_the_issuer_the_jwks_push_and_poll_delivery_and_the_stream_endpoints()
    {
        using var response = await Host.Client.GetAsync("/.well-known/ssf-configuration");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var json = await JsonAsync(response);
        Assert.Equal("1_0", json.GetProperty("spec_version").GetString());
        Assert.Equal(Issuer, json.GetProperty("issuer").GetString());
        Assert.Equal(Issuer + "/.well-known/jwks.json", json.GetProperty("jwks_uri").GetString());
        Assert.Equal(["urn:ietf:rfc:8935", "urn:ietf:rfc:8936"], json.GetProperty("delivery_methods_supported").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(Issuer + "/ssf/streams", json.GetProperty("configuration_endpoint").GetString());
        Assert.Equal(Issuer + "/ssf/streams/status", json.GetProperty("status_endpoint").GetString());
        Assert.Equal(Issuer + "/ssf/streams/verify", json.GetProperty("verification_endpoint").GetString());
        Assert.Equal("ALL", json.GetProperty("default_subjects").GetString());
        Assert.Equal("urn:ietf:rfc:7617", json.GetProperty("authorization_schemes")[0].GetProperty("spec_urn").GetString());
    }

    [Fact]
    public async Task The_stream_api_needs_a_resource_servers_credentials()
    {
        using var none = await SendAsync(HttpMethod.Get, "/ssf/streams", null, null);
        await AssertProblemAsync(none, HttpStatusCode.Unauthorized);
        Assert.Equal("Basic", none.Headers.WwwAuthenticate.Single().Scheme);
        using var wrong = await SendAsync(HttpMethod.Get, "/ssf/streams", null, Basic(OrdersApi, "wrong-secret"));
        await AssertProblemAsync(wrong, HttpStatusCode.Unauthorized);
        using var notReceiver = await SendAsync(HttpMethod.Post, "/ssf/streams", "{}", Basic("web", WebSecret));
        await AssertProblemAsync(notReceiver, HttpStatusCode.Forbidden);
        using var poll = await SendAsync(HttpMethod.Post, "/ssf/poll/anything", "{}", null);
        await AssertProblemAsync(poll, HttpStatusCode.Unauthorized);
    }

    [Fact]
    public async Task A_receiver_creates_reads_updates_replaces_and_deletes_its_streams_up_to_the_maximum()
    {
        await DeleteStreamsAsync(OrdersApi);
        using var created = await SendAsync(HttpMethod.Post, "/ssf/streams",
            """{"events_requested":["https://schemas.openid.net/secevent/caep/event-type/session-revoked","urn:example:unknown"],"description":"orders"}""", Auth(OrdersApi));
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.Equal("no-store", created.Headers.CacheControl?.ToString());
        var config = await JsonAsync(created);
        var streamId = config.GetProperty("stream_id").GetString()!;
        Assert.Equal(Issuer, config.GetProperty("iss").GetString());
        Assert.Equal("api://orders", config.GetProperty("aud").GetString());
        Assert.Equal(["https://schemas.openid.net/secevent/caep/event-type/session-revoked"], Strings(config.GetProperty("events_delivered")));
        Assert.Equal("urn:ietf:rfc:8936", config.GetProperty("delivery").GetProperty("method").GetString());
        Assert.Equal(Issuer + "/ssf/poll/" + streamId, config.GetProperty("delivery").GetProperty("endpoint_url").GetString());

        // Each instance of a scaled-out API has its own stream: up to SharedSignals:MaxStreamsPerReceiver (16), then 409
        // (SSF 1.0 §8.1.1.1). The extra ones are deleted again.
        var extra = new List<string>();
        for (var i = 1; i < 16; i++)
        {
            using var another = await SendAsync(HttpMethod.Post, "/ssf/streams", "{}", Auth(OrdersApi));
            Assert.Equal(HttpStatusCode.Created, another.StatusCode);
            extra.Add((await JsonAsync(another)).GetProperty("stream_id").GetString()!);
        }

        using var beyond = await SendAsync(HttpMethod.Post, "/ssf/streams", "{}", Auth(OrdersApi));
        await AssertProblemAsync(beyond, HttpStatusCode.Conflict);
        using var sixteen = await SendAsync(HttpMethod.Get, "/ssf/streams", null, Auth(OrdersApi));
        Assert.Equal(16, (await JsonAsync(sixteen)).GetArrayLength());
        foreach (var id in extra)
        {
            using var removed = await SendAsync(HttpMethod.Delete, "/ssf/streams?stream_id=" + id, null, Auth(OrdersApi));
            Assert.Equal(HttpStatusCode.NoContent, removed.StatusCode);
        }

        using var read = await SendAsync(HttpMethod.Get, "/ssf/streams?stream_id=" + streamId, null, Auth(OrdersApi));
        Assert.Equal(streamId, (await JsonAsync(read)).GetProperty("stream_id").GetString());
        using var list = await SendAsync(HttpMethod.Get, "/ssf/streams", null, Auth(OrdersApi));
        Assert.Equal([streamId], (await JsonAsync(list)).EnumerateArray().Select(s => s.GetProperty("stream_id").GetString()));

        // PATCH changes only what it names; PUT deletes what it leaves out (SSF 1.0 §8.1.1.3, §8.1.1.4).
        using var patched = await SendAsync(HttpMethod.Patch, "/ssf/streams", $$"""{"stream_id":"{{streamId}}","description":"orders api"}""", Auth(OrdersApi));
        var afterPatch = await JsonAsync(patched);
        Assert.Equal("orders api", afterPatch.GetProperty("description").GetString());
        Assert.Equal(2, afterPatch.GetProperty("events_requested").GetArrayLength());
        using var replaced = await SendAsync(HttpMethod.Put, "/ssf/streams", $$"""{"stream_id":"{{streamId}}","iss":"{{Issuer}}"}""", Auth(OrdersApi));
        var afterPut = await JsonAsync(replaced);
        Assert.Equal(HttpStatusCode.OK, replaced.StatusCode);
        Assert.False(afterPut.TryGetProperty("description", out _));
        Assert.False(afterPut.TryGetProperty("events_requested", out _));

        // A transmitter-supplied property may be sent only with its value.
        using var wrongIss = await SendAsync(HttpMethod.Patch, "/ssf/streams", $$"""{"stream_id":"{{streamId}}","iss":"https://other.example"}""", Auth(OrdersApi));
        await AssertProblemAsync(wrongIss, HttpStatusCode.BadRequest);
        using var wrongAud = await SendAsync(HttpMethod.Put, "/ssf/streams", $$"""{"stream_id":"{{streamId}}","aud":"api://billing"}""", Auth(OrdersApi));
        await AssertProblemAsync(wrongAud, HttpStatusCode.BadRequest);

        using var deleted = await SendAsync(HttpMethod.Delete, "/ssf/streams?stream_id=" + streamId, null, Auth(OrdersApi));
        Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        using var gone = await SendAsync(HttpMethod.Get, "/ssf/streams?stream_id=" + streamId, null, Auth(OrdersApi));
        await AssertProblemAsync(gone, HttpStatusCode.NotFound);
        using var empty = await SendAsync(HttpMethod.Get, "/ssf/streams", null, Auth(OrdersApi));
        Assert.Equal(0, (await JsonAsync(empty)).GetArrayLength());
    }

    [Theory]
    [InlineData("""{"delivery":{"method":"urn:ietf:rfc:8935"}}""")]
    [InlineData("""{"delivery":{"method":"urn:ietf:rfc:8935","endpoint_url":"http://receiver.example/events"}}""")]
    [InlineData("""{"delivery":{"method":"urn:ietf:rfc:8935","endpoint_url":"https://user:pw@receiver.example/events"}}""")]
    [InlineData("""{"delivery":{"method":"urn:ietf:rfc:8935","endpoint_url":"/relative/events"}}""")]
    [InlineData("""{"delivery":{"method":"urn:ietf:rfc:8935","endpoint_url":"https://receiver.example/events","authorization_header":"Bearer x\r\nX-Injected: 1"}}""")]
    [InlineData("""{"delivery":{"method":"urn:ietf:rfc:8935","endpoint_url":"https://receiver.example/events","authorization_header":42}}""")]
    [InlineData("""{"delivery":{"method":"urn:example:carrier-pigeon"}}""")]
    [InlineData("""{"events_requested":"not-an-array"}""")]
    [InlineData("""{"description":42}""")]
    [InlineData("""[]""")]
    [InlineData("""{"unterminated":""")]
    public async Task A_create_the_transmitter_cannot_honour_is_400_and_creates_nothing(string body)
    {
        await DeleteStreamsAsync(OrdersApi);
        using var response = await SendAsync(HttpMethod.Post, "/ssf/streams", body, Auth(OrdersApi));
        await AssertProblemAsync(response, HttpStatusCode.BadRequest);
        using var list = await SendAsync(HttpMethod.Get, "/ssf/streams", null, Auth(OrdersApi));
        Assert.Equal(0, (await JsonAsync(list)).GetArrayLength());
    }

    [Fact]
    public async Task A_receiver_cannot_see_change_poll_or_delete_another_receivers_stream()
    {
        var orders = await CreateStreamAsync(OrdersApi);
        foreach (var (method, path, body) in new (HttpMethod, string, string?)[]
        {
            (HttpMethod.Get, "/ssf/streams?stream_id=" + orders, null),
            (HttpMethod.Patch, "/ssf/streams", $$"""{"stream_id":"{{orders}}","description":"mine"}"""),
            (HttpMethod.Delete, "/ssf/streams?stream_id=" + orders, null),
            (HttpMethod.Get, "/ssf/streams/status?stream_id=" + orders, null),
            (HttpMethod.Post, "/ssf/streams/status", $$"""{"stream_id":"{{orders}}","status":"disabled"}"""),
            (HttpMethod.Post, "/ssf/streams/verify", $$"""{"stream_id":"{{orders}}"}"""),
            (HttpMethod.Post, "/ssf/poll/" + orders, "{}"),
        })
        {
            using var response = await SendAsync(method, path, body, Auth(BillingApi));
            await AssertProblemAsync(response, HttpStatusCode.NotFound);
        }

        using var status = await SendAsync(HttpMethod.Get, "/ssf/streams/status?stream_id=" + orders, null, Auth(OrdersApi));
        Assert.Equal("enabled", (await JsonAsync(status)).GetProperty("status").GetString());
    }

    [Fact]
    public async Task A_revoked_refresh_token_reaches_the_receiver_of_the_sessions_audience_as_a_signed_session_revoked_set()
    {
        var stream = await CreateStreamAsync(OrdersApi);
        var login = await Host.LoginAsync("ssf-ray", audience: "api://orders");
        var sid = SessionIdOf(login.AccessToken);
        using (var revoke = await Host.PostFormAsync("/oauth2/revoke", [new("token", login.RefreshToken)], Basic("web", WebSecret)))
        {
            Assert.Equal(HttpStatusCode.OK, revoke.StatusCode);
        }

        var (jti, set) = Assert.Single(await PollForSessionAsync(OrdersApi, stream, sid));
        var claims = await ValidateAsync(set, "api://orders");
        Assert.Equal(jti, claims.Id);
        var events = JsonDocument.Parse(claims.GetPayloadValue<object>("events").ToString()!).RootElement;
        var revoked = events.GetProperty("https://schemas.openid.net/secevent/caep/event-type/session-revoked");
        Assert.Equal("system", revoked.GetProperty("initiating_entity").GetString());
        Assert.Equal("revoked_by_client", revoked.GetProperty("reason_admin").GetProperty("en").GetString());
        var subject = JsonDocument.Parse(claims.GetPayloadValue<object>("sub_id").ToString()!).RootElement;
        Assert.Equal("ssf-ray", subject.GetProperty("user").GetProperty("sub").GetString());
    }

    [Fact]
    public async Task A_receiver_never_hears_of_a_session_of_another_receivers_audience()
    {
        var orders = await CreateStreamAsync(OrdersApi);
        var billing = await CreateStreamAsync(BillingApi);
        var billingOnly = await Host.LoginAsync("ssf-bea", audience: "api://billing");
        var ordersOnly = await Host.LoginAsync("ssf-oz", audience: "api://orders");
        foreach (var login in new[] { billingOnly, ordersOnly })
        {
            using var revoke = await Host.PostFormAsync("/oauth2/revoke", [new("token", login.RefreshToken)], Basic("web", WebSecret));
            Assert.Equal(HttpStatusCode.OK, revoke.StatusCode);
        }

        var ordersSeen = (await PollAllAsync(OrdersApi, orders)).Select(s => SessionOf(s.Set)).ToList();
        var billingSeen = (await PollAllAsync(BillingApi, billing)).Select(s => SessionOf(s.Set)).ToList();
        Assert.Contains(SessionIdOf(ordersOnly.AccessToken), ordersSeen);
        Assert.DoesNotContain(SessionIdOf(billingOnly.AccessToken), ordersSeen);
        Assert.Contains(SessionIdOf(billingOnly.AccessToken), billingSeen);
        Assert.DoesNotContain(SessionIdOf(ordersOnly.AccessToken), billingSeen);
    }

    [Fact]
    public async Task An_unacknowledged_set_is_sent_again_with_the_same_jti_and_an_acknowledged_one_is_not()
    {
        var stream = await CreateStreamAsync(OrdersApi);
        var login = await Host.LoginAsync("ssf-ack", audience: "api://orders");
        using (var revoke = await Host.PostFormAsync("/oauth2/revoke", [new("token", login.RefreshToken)], Basic("web", WebSecret)))
        {
            Assert.Equal(HttpStatusCode.OK, revoke.StatusCode);
        }

        var sid = SessionIdOf(login.AccessToken);
        var first = Assert.Single(await PollForSessionAsync(OrdersApi, stream, sid, acknowledge: false));
        var again = Assert.Single(await PollForSessionAsync(OrdersApi, stream, sid, acknowledge: false));
        Assert.Equal(first, again);

        using var ack = await SendAsync(HttpMethod.Post, "/ssf/poll/" + stream, $$"""{"ack":["{{first.Jti}}"],"maxEvents":0,"returnImmediately":true}""", Auth(OrdersApi));
        var acked = await JsonAsync(ack);
        Assert.Empty(acked.GetProperty("sets").EnumerateObject());
        Assert.Empty(await PollForSessionAsync(OrdersApi, stream, sid, acknowledge: false));
    }

    [Fact]
    public async Task A_paused_stream_holds_its_events_until_enabled_and_a_disabled_one_drops_them()
    {
        var stream = await CreateStreamAsync(OrdersApi);
        await SetStatusAsync(stream, "paused");
        var held = await Host.LoginAsync("ssf-held", audience: "api://orders");
        await RevokeAsync(held);
        Assert.Empty(await PollForSessionAsync(OrdersApi, stream, SessionIdOf(held.AccessToken), acknowledge: false));

        await SetStatusAsync(stream, "enabled");
        Assert.Single(await PollForSessionAsync(OrdersApi, stream, SessionIdOf(held.AccessToken)));

        await SetStatusAsync(stream, "disabled");
        var dropped = await Host.LoginAsync("ssf-dropped", audience: "api://orders");
        await RevokeAsync(dropped);
        await SetStatusAsync(stream, "enabled");
        Assert.Empty(await PollForSessionAsync(OrdersApi, stream, SessionIdOf(dropped.AccessToken)));

        using var bad = await SendAsync(HttpMethod.Post, "/ssf/streams/status", $$"""{"stream_id":"{{stream}}","status":"asleep"}""", Auth(OrdersApi));
        await AssertProblemAsync(bad, HttpStatusCode.BadRequest);
    }

    [Fact]
    public async Task A_verification_request_is_answered_204_and_delivers_a_verification_set_echoing_the_state()
    {
        var stream = await CreateStreamAsync(OrdersApi);
        using var verify = await SendAsync(HttpMethod.Post, "/ssf/streams/verify", $$"""{"stream_id":"{{stream}}","state":"state-123"}""", Auth(OrdersApi));
        Assert.Equal(HttpStatusCode.NoContent, verify.StatusCode);

        var verification = (await PollAllAsync(OrdersApi, stream))
            .Select(s => s.Set)
            .Single(set => new JsonWebToken(set).TryGetPayloadValue<object>("events", out var events)
                && events.ToString()!.Contains("ssf/event-type/verification", StringComparison.Ordinal));
        var claims = await ValidateAsync(verification, "api://orders");
        var subject = JsonDocument.Parse(claims.GetPayloadValue<object>("sub_id").ToString()!).RootElement;
        Assert.Equal("opaque", subject.GetProperty("format").GetString());
        Assert.Equal(stream, subject.GetProperty("id").GetString());
        Assert.Contains("\"state\":\"state-123\"", claims.GetPayloadValue<object>("events").ToString()!.Replace(" ", string.Empty, StringComparison.Ordinal), StringComparison.Ordinal);

        using var unknown = await SendAsync(HttpMethod.Post, "/ssf/streams/verify", """{"stream_id":"no-such-stream"}""", Auth(OrdersApi));
        await AssertProblemAsync(unknown, HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task An_admin_force_logout_reaches_the_receiver_once_per_ended_session_with_one_txn()
    {
        var stream = await CreateStreamAsync(OrdersApi);
        var first = await Host.LoginAsync("ssf-forced", audience: "api://orders");
        var second = await Host.LoginAsync("ssf-forced", audience: "api://orders");
        using (var revoke = await Host.PostFormAsync("/management/users/revoke", [new("user_id", "ssf-forced")], Basic("ops", OpsSecret)))
        {
            Assert.Equal(HttpStatusCode.OK, revoke.StatusCode);
        }

        var sets = (await PollAllAsync(OrdersApi, stream)).Select(s => new JsonWebToken(s.Set)).ToList();
        var mine = sets.Where(t => SessionOf(t.EncodedToken) is { } sid && (sid == SessionIdOf(first.AccessToken) || sid == SessionIdOf(second.AccessToken))).ToList();
        Assert.Equal(2, mine.Count);
        Assert.Single(mine.Select(t => t.GetPayloadValue<string>("txn")).Distinct());
        Assert.All(mine, t => Assert.Contains("\"initiating_entity\":\"admin\"", t.GetPayloadValue<object>("events").ToString()!.Replace(" ", string.Empty, StringComparison.Ordinal), StringComparison.Ordinal));
    }

    // ---- helpers ---------------------------------------------------------------------------------

    private static AuthenticationHeaderValue Auth(string receiver) =>
        receiver == BillingApi ? Basic(BillingApi, SharedSignalsHostFixture.BillingApiSecret) : Basic(OrdersApi, ApiSecret);

    private async Task<HttpResponseMessage> SendAsync(HttpMethod method, string path, string? json, AuthenticationHeaderValue? auth)
    {
        using var request = new HttpRequestMessage(method, path);
        request.Headers.Authorization = auth;
        if (json is not null)
        {
            request.Content = new StringContent(json, Encoding.UTF8, "application/json");
        }

        return await Host.Client.SendAsync(request);
    }

    /// <summary>Deletes the receiver's streams and creates a fresh one; its id.</summary>
    private async Task<string> CreateStreamAsync(string receiver)
    {
        await DeleteStreamsAsync(receiver);
        using var created = await SendAsync(HttpMethod.Post, "/ssf/streams", "{}", Auth(receiver));
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        return (await JsonAsync(created)).GetProperty("stream_id").GetString()!;
    }

    private async Task DeleteStreamsAsync(string receiver)
    {
        using var list = await SendAsync(HttpMethod.Get, "/ssf/streams", null, Auth(receiver));
        Assert.Equal(HttpStatusCode.OK, list.StatusCode);
        foreach (var stream in (await JsonAsync(list)).EnumerateArray())
        {
            using var deleted = await SendAsync(HttpMethod.Delete, "/ssf/streams?stream_id=" + stream.GetProperty("stream_id").GetString(), null, Auth(receiver));
            Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        }
    }

    private async Task SetStatusAsync(string stream, string status)
    {
        using var response = await SendAsync(HttpMethod.Post, "/ssf/streams/status", $$"""{"stream_id":"{{stream}}","status":"{{status}}","reason":"test"}""", Auth(OrdersApi));
        var json = await JsonAsync(response);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(status, json.GetProperty("status").GetString());
        using var read = await SendAsync(HttpMethod.Get, "/ssf/streams/status?stream_id=" + stream, null, Auth(OrdersApi));
        Assert.Equal(status, (await JsonAsync(read)).GetProperty("status").GetString());
    }

    private async Task RevokeAsync(TokenPair login)
    {
        using var revoke = await Host.PostFormAsync("/oauth2/revoke", [new("token", login.RefreshToken)], Basic("web", WebSecret));
        Assert.Equal(HttpStatusCode.OK, revoke.StatusCode);
    }

    /// <summary>Every SET the stream holds now, without acknowledging any (RFC 8936: sets keyed by jti).</summary>
    private async Task<List<(string Jti, string Set)>> PollAllAsync(string receiver, string stream)
    {
        using var response = await SendAsync(HttpMethod.Post, "/ssf/poll/" + stream, """{"maxEvents":100,"returnImmediately":true}""", Auth(receiver));
        var json = await JsonAsync(response);
        Assert.True(response.StatusCode == HttpStatusCode.OK, json.ToString());
        Assert.Equal("no-store", response.Headers.CacheControl?.ToString());
        Assert.False(json.GetProperty("moreAvailable").GetBoolean());
        return [.. json.GetProperty("sets").EnumerateObject().Select(p => (p.Name, p.Value.GetString()!))];
    }

    /// <summary>The SETs about <paramref name="sid"/>; acknowledges them when <paramref name="acknowledge"/>.</summary>
    private async Task<List<(string Jti, string Set)>> PollForSessionAsync(string receiver, string stream, string sid, bool acknowledge = true)
    {
        var about = (await PollAllAsync(receiver, stream)).Where(s => SessionOf(s.Set) == sid).ToList();
        if (acknowledge && about.Count > 0)
        {
            using var ack = await SendAsync(HttpMethod.Post, "/ssf/poll/" + stream, JsonSerializer.Serialize(new { ack = about.Select(s => s.Jti), maxEvents = 0 }), Auth(receiver));
            Assert.Equal(HttpStatusCode.OK, ack.StatusCode);
        }

        return about;
    }

    /// <summary>The session a session-revoked SET names (its complex sub_id's session), or null.</summary>
    private static string? SessionOf(string set)
    {
        var token = new JsonWebToken(set);
        if (!token.TryGetPayloadValue<object>("sub_id", out var subId))
        {
            return null;
        }

        var subject = JsonDocument.Parse(subId.ToString()!).RootElement;
        return subject.TryGetProperty("session", out var session) ? session.GetProperty("id").GetString() : null;
    }

    private static string SessionIdOf(string accessToken) => new JsonWebToken(accessToken).GetPayloadValue<string>("sid");

    /// <summary>
    /// Validates <paramref name="set"/> as a receiver would, with Microsoft.IdentityModel against the service's JWKS:
    /// signature by a published kid, iss, aud, typ secevent+jwt (RFC 8417 §2.3); and no sub or exp (SSF 1.0 §4.1.2, §4.1.7).
    /// </summary>
    private async Task<JsonWebToken> ValidateAsync(string set, string audience)
    {
        using var jwks = await Host.Client.GetAsync("/.well-known/jwks.json");
        var keys = new JsonWebKeySet(await jwks.Content.ReadAsStringAsync());
        var result = await new JsonWebTokenHandler().ValidateTokenAsync(set, new TokenValidationParameters
        {
            ValidIssuer = Issuer,
            ValidAudience = audience,
            IssuerSigningKeys = keys.GetSigningKeys(),
            ValidTypes = ["secevent+jwt"],
            RequireExpirationTime = false,
            ValidateLifetime = false,
        });
        Assert.True(result.IsValid, result.Exception?.Message);
        var token = (JsonWebToken)result.SecurityToken;
        Assert.Equal("secevent+jwt", token.Typ);
        Assert.False(token.TryGetPayloadValue<object>("sub", out _));
        Assert.False(token.TryGetPayloadValue<object>("exp", out _));
        Assert.True(token.TryGetPayloadValue<long>("iat", out _));
        Assert.False(string.IsNullOrEmpty(token.Id));
        return token;
    }

    private static IEnumerable<string?> Strings(JsonElement array) => array.EnumerateArray().Select(e => e.GetString());

    private static async Task AssertProblemAsync(HttpResponseMessage response, HttpStatusCode status)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == status, $"Expected {(int)status} but got {(int)response.StatusCode}: {body}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal((int)status, JsonDocument.Parse(body).RootElement.GetProperty("status").GetInt32());
    }
}

/// <summary>Without <c>SharedSignals:Enabled</c> (the default) every transmitter route answers 404 problem details.</summary>
public sealed class SharedSignalsDisabledTests(HostFixture fixture) : SharedSignalsDisabledTests<HostFixture>(fixture);

public sealed class SharedSignalsDisabledTestsOnFunctions(FunctionsHostFixture fixture) : SharedSignalsDisabledTests<FunctionsHostFixture>(fixture);

public abstract class SharedSignalsDisabledTests<TFixture>(TFixture fixture) : IClassFixture<TFixture>
    where TFixture : HostFixture
{
    [Theory]
    [InlineData("GET", "/.well-known/ssf-configuration")]
    [InlineData("POST", "/ssf/streams")]
    [InlineData("GET", "/ssf/streams/status?stream_id=x")]
    [InlineData("POST", "/ssf/streams/verify")]
    [InlineData("POST", "/ssf/poll/x")]
    public async Task Every_transmitter_route_is_404_when_the_transmitter_is_off(string method, string path)
    {
        using var request = new HttpRequestMessage(new HttpMethod(method), path) { Content = method == "GET" ? null : new StringContent("{}", Encoding.UTF8, "application/json") };
        request.Headers.Authorization = Basic("api", ApiSecret);
        using var response = await fixture.Host.Client.SendAsync(request);
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains("SharedSignals:Enabled", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }
}
