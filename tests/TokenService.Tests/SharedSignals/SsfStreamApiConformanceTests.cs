using System.Net;
using System.Text;
using System.Text.Json;
using TokenService.SharedSignals;
using TokenService.Tests.Infrastructure;
using static TokenService.Tests.Infrastructure.TokenServiceTestHost;

namespace TokenService.Tests.SharedSignals;

public sealed class SsfStreamApiConformanceTests(SharedSignalsHostFixture fixture) : SsfStreamApiConformanceTests<SharedSignalsHostFixture>(fixture);

/// <summary>The same table on the Functions app (its HTTP functions invoked in-process).</summary>
public sealed class SsfStreamApiConformanceTestsOnFunctions(SharedSignalsFunctionsHostFixture fixture) : SsfStreamApiConformanceTests<SharedSignalsFunctionsHostFixture>(fixture);

/// <summary>The same table against the published app under a real Functions host (<see cref="RealFunctionsHostPool"/>).</summary>
[RealFunctionsHostTier]
[Collection(RealFunctionsHostCollection.Name)]
public sealed class SsfStreamApiConformanceTestsOnRealHost(SharedSignalsRealFunctionsHostFixture fixture) : SsfStreamApiConformanceTests<SharedSignalsRealFunctionsHostFixture>(fixture);

/// <summary>
/// The conformance table's rows that go through HTTP only, so that they run on every host, the real Functions host
/// included: SSF 1.0 §7 (metadata), §8 (the stream API), RFC 8936 §2 (poll) and the end-to-end access-token revocation, one test per
/// normative requirement, named for its section. (The SET profile and the stream rules: <see cref="SsfConformanceTests{TFixture}"/>.)
/// Each test starts from a fresh stream of its own receiver; the receivers are shared per host.
/// </summary>
public abstract class SsfStreamApiConformanceTests<TFixture>(TFixture fixture) : IClassFixture<TFixture>
    where TFixture : HostFixture
{
    private const string OrdersApi = SsfStreamApiClient.OrdersApi;
    private const string BillingApi = SharedSignalsHostFixture.BillingApi;

    private TokenServiceTestHost Host => fixture.Host;

    [Fact]
    public async Task SSF_7_2_the_metadata_is_json_with_a_jwks_uri_and_its_issuer_is_the_iss_of_the_sets()
    {
        using var response = await Host.Client.GetAsync("/.well-known/ssf-configuration");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        var metadata = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(Issuer, metadata.GetProperty("issuer").GetString());
        Assert.StartsWith("https://", metadata.GetProperty("jwks_uri").GetString(), StringComparison.Ordinal); // SSF 1.0 §7.1

        var stream = await CreateStreamAsync(OrdersApi, "{}");
        using (var verify = await SendAsync(HttpMethod.Post, "/ssf/streams/verify", $$"""{"stream_id":"{{stream}}"}""", OrdersApi))
        {
            Assert.Equal(HttpStatusCode.NoContent, verify.StatusCode);
        }

        var set = Assert.Single(await PollAsync(OrdersApi, stream));
        Assert.Equal(metadata.GetProperty("issuer").GetString(), Part(set.Split('.')[1]).GetProperty("iss").GetString());
    }

    [Fact]
    public async Task SSF_8_1_1_a_created_stream_has_every_required_transmitter_supplied_property()
    {
        var stream = await CreateStreamAsync(OrdersApi, $$"""{"events_requested":["{{SsfProtocol.AccessTokenRevokedEventType}}","urn:example:unknown"]}""");
        using var read = await SendAsync(HttpMethod.Get, "/ssf/streams?stream_id=" + stream, null, OrdersApi);
        var config = JsonDocument.Parse(await read.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(stream, config.GetProperty("stream_id").GetString());
        var iss = new Uri(config.GetProperty("iss").GetString()!);
        Assert.Equal(Issuer, config.GetProperty("iss").GetString());
        Assert.Equal("https", iss.Scheme);
        Assert.True(iss.Query.Length == 0 && iss.Fragment.Length == 0);
        Assert.Equal("api://orders", config.GetProperty("aud").GetString());
        Assert.Equal(SsfProtocol.EventsSupported, config.GetProperty("events_supported").EnumerateArray().Select(e => e.GetString()));
        // A subset of the intersection of supported and requested; the unknown URI is ignored.
        Assert.Equal([SsfProtocol.AccessTokenRevokedEventType], config.GetProperty("events_delivered").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(SsfProtocol.PollDeliveryMethod, config.GetProperty("delivery").GetProperty("method").GetString());
    }

    [Fact]
    public async Task RFC7009_an_access_token_revoked_by_its_client_reaches_the_receivers_of_its_audience_only_once_revoked()
    {
        var orders = await CreateStreamAsync(OrdersApi, "{}");
        var billing = await CreateStreamAsync(BillingApi, "{}");
        var login = await Host.LoginAsync("ssf-at-revoked", audience: "api://orders");
        var jti = Part(login.AccessToken.Split('.')[1]).GetProperty("jti").GetString();

        using (var revoke = await Host.PostFormAsync("/oauth2/revoke", [new("token", login.AccessToken), new("token_type_hint", "access_token")], Basic("web", WebSecret)))
        {
            Assert.Equal(HttpStatusCode.OK, revoke.StatusCode);
        }

        // In force before anyone is told: the token is inactive at introspection.
        using (var introspect = await Host.PostFormAsync("/oauth2/introspect", [new("token", login.AccessToken)], Basic(OrdersApi, ApiSecret)))
        {
            Assert.False(JsonDocument.Parse(await introspect.Content.ReadAsStringAsync()).RootElement.GetProperty("active").GetBoolean());
        }

        var told = (await PollAsync(OrdersApi, orders)).Select(set => Part(set.Split('.')[1]))
            .Where(c => c.GetProperty("events").TryGetProperty(SsfProtocol.AccessTokenRevokedEventType, out _)).ToList();
        var claims = Assert.Single(told);
        Assert.Equal("jwt_id", claims.GetProperty("sub_id").GetProperty("format").GetString());
        Assert.Equal(jti, claims.GetProperty("sub_id").GetProperty("jti").GetString());
        Assert.Equal("api://orders", claims.GetProperty("aud").GetString());
        Assert.DoesNotContain(await PollAsync(BillingApi, billing), set => Part(set.Split('.')[1]).GetProperty("events").TryGetProperty(SsfProtocol.AccessTokenRevokedEventType, out _));

        // The session goes on: no session-revoked for it.
        Assert.DoesNotContain(told, c => c.GetProperty("events").TryGetProperty(SsfProtocol.SessionRevokedEventType, out _));
    }

    [Fact]
    public async Task SSF_8_1_1_1_a_create_without_delivery_is_poll_with_the_transmitters_endpoint_url()
    {
        var stream = await CreateStreamAsync(OrdersApi, """{"description":"no delivery"}""");
        var delivery = (await ReadAsync(OrdersApi, stream)).GetProperty("delivery");
        Assert.Equal(SsfProtocol.PollDeliveryMethod, delivery.GetProperty("method").GetString());
        Assert.Equal(Issuer + "/ssf/poll/" + stream, delivery.GetProperty("endpoint_url").GetString());
    }

    [Fact]
    public async Task SSF_8_1_1_2_a_read_without_stream_id_lists_the_receivers_streams_and_an_empty_list_when_none()
    {
        var stream = await CreateStreamAsync(OrdersApi, "{}");
        using (var list = await SendAsync(HttpMethod.Get, "/ssf/streams", null, OrdersApi))
        {
            Assert.Equal([stream], JsonDocument.Parse(await list.Content.ReadAsStringAsync()).RootElement.EnumerateArray().Select(s => s.GetProperty("stream_id").GetString()));
        }

        using (var deleted = await SendAsync(HttpMethod.Delete, "/ssf/streams?stream_id=" + stream, null, OrdersApi))
        {
            Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        }

        using var empty = await SendAsync(HttpMethod.Get, "/ssf/streams", null, OrdersApi);
        Assert.Equal(HttpStatusCode.OK, empty.StatusCode);
        var root = JsonDocument.Parse(await empty.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(JsonValueKind.Array, root.ValueKind);
        Assert.Equal(0, root.GetArrayLength());
    }

    [Fact]
    public async Task SSF_8_1_1_3_patch_updates_the_receiver_supplied_properties_present_and_keeps_the_missing_ones()
    {
        var stream = await CreateStreamAsync(OrdersApi, $$"""{"events_requested":["{{SsfProtocol.SessionRevokedEventType}}"],"description":"before"}""");
        using var patched = await SendAsync(HttpMethod.Patch, "/ssf/streams", $$"""{"stream_id":"{{stream}}","description":"after"}""", OrdersApi);
        Assert.Equal(HttpStatusCode.OK, patched.StatusCode);
        var config = JsonDocument.Parse(await patched.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal("after", config.GetProperty("description").GetString());
        Assert.Equal([SsfProtocol.SessionRevokedEventType], config.GetProperty("events_requested").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(stream, (await ReadAsync(OrdersApi, stream)).GetProperty("stream_id").GetString());
        Assert.Equal("after", (await ReadAsync(OrdersApi, stream)).GetProperty("description").GetString());
    }

    [Fact]
    public async Task SSF_8_1_1_3_events_delivered_in_an_update_must_match_its_value_before_the_update()
    {
        var stream = await CreateStreamAsync(OrdersApi, $$"""{"events_requested":["{{SsfProtocol.SessionRevokedEventType}}"]}""");
        var widen = $$"""["{{SsfProtocol.SessionRevokedEventType}}","{{SsfProtocol.AccessTokenRevokedEventType}}"]""";

        // The value after the update is not the value before it: 400, and nothing changes.
        using (var mismatch = await SendAsync(HttpMethod.Patch, "/ssf/streams", $$"""{"stream_id":"{{stream}}","events_requested":{{widen}},"events_delivered":{{widen}}}""", OrdersApi))
        {
            Assert.Equal(HttpStatusCode.BadRequest, mismatch.StatusCode);
        }

        Assert.Equal(1, (await ReadAsync(OrdersApi, stream)).GetProperty("events_delivered").GetArrayLength());

        using var matching = await SendAsync(HttpMethod.Patch, "/ssf/streams",
            $$"""{"stream_id":"{{stream}}","events_requested":{{widen}},"events_delivered":["{{SsfProtocol.SessionRevokedEventType}}"]}""", OrdersApi);
        Assert.Equal(HttpStatusCode.OK, matching.StatusCode);
        Assert.Equal(2, JsonDocument.Parse(await matching.Content.ReadAsStringAsync()).RootElement.GetProperty("events_delivered").GetArrayLength());
    }

    [Fact]
    public async Task SSF_8_1_1_4_put_deletes_the_receiver_supplied_properties_it_leaves_out()
    {
        var stream = await CreateStreamAsync(OrdersApi, $$"""{"events_requested":["{{SsfProtocol.SessionRevokedEventType}}"],"description":"kept?"}""");
        using var replaced = await SendAsync(HttpMethod.Put, "/ssf/streams", $$"""{"stream_id":"{{stream}}"}""", OrdersApi);
        Assert.Equal(HttpStatusCode.OK, replaced.StatusCode);
        var config = await ReadAsync(OrdersApi, stream);
        Assert.False(config.TryGetProperty("description", out _));
        Assert.False(config.TryGetProperty("events_requested", out _));
        Assert.Equal(SsfProtocol.EventsSupported, config.GetProperty("events_delivered").EnumerateArray().Select(e => e.GetString()));
    }

    [Fact]
    public async Task SSF_8_the_stream_api_authenticates_and_a_receiver_reaches_only_its_own_streams()
    {
        // SSF 1.0 §8: the management endpoints MUST use HTTP authentication, and the authorization MUST associate a
        // receiver with its stream ids so that only it can access or modify them; RFC 8936 §2: the poll endpoint too.
        var orders = await CreateStreamAsync(OrdersApi, "{}");
        await CreateStreamAsync(BillingApi, "{}");
        using (var anonymous = await SendAsync(HttpMethod.Get, "/ssf/streams?stream_id=" + orders, null, receiver: null))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        }

        (HttpMethod Method, string Path, string? Body)[] foreign =
        [
            (HttpMethod.Get, "/ssf/streams?stream_id=" + orders, null),
            (HttpMethod.Patch, "/ssf/streams", $$"""{"stream_id":"{{orders}}","description":"mine now"}"""),
            (HttpMethod.Get, "/ssf/streams/status?stream_id=" + orders, null),
            (HttpMethod.Post, "/ssf/streams/verify", $$"""{"stream_id":"{{orders}}"}"""),
            (HttpMethod.Post, "/ssf/poll/" + orders, "{}"),
            (HttpMethod.Delete, "/ssf/streams?stream_id=" + orders, null),
        ];
        foreach (var (method, path, body) in foreign)
        {
            using var response = await SendAsync(method, path, body, BillingApi);
            Assert.True(response.StatusCode == HttpStatusCode.NotFound, $"{method} {path}: {(int)response.StatusCode}");
        }

        Assert.False((await ReadAsync(OrdersApi, orders)).TryGetProperty("description", out _));
    }

    [Fact]
    public async Task RFC8936_2_3_a_poll_with_nothing_held_answers_an_empty_sets_object()
    {
        var stream = await CreateStreamAsync(OrdersApi, "{}");
        using var response = await SendAsync(HttpMethod.Post, "/ssf/poll/" + stream, "{}", OrdersApi);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(JsonValueKind.Object, json.GetProperty("sets").ValueKind);
        Assert.Empty(json.GetProperty("sets").EnumerateObject());
    }

    [Fact]
    public async Task RFC8936_2_4_a_set_reported_in_setErrs_is_not_sent_again_and_the_others_are()
    {
        var stream = await CreateStreamAsync(OrdersApi, "{}");
        foreach (var state in new[] { "refused", "kept" })
        {
            using var verify = await SendAsync(HttpMethod.Post, "/ssf/streams/verify", $$"""{"stream_id":"{{stream}}","state":"{{state}}"}""", OrdersApi);
            Assert.Equal(HttpStatusCode.NoContent, verify.StatusCode);
        }

        var held = (await PollAsync(OrdersApi, stream)).ToDictionary(StateOf, set => Part(set.Split('.')[1]).GetProperty("jti").GetString()!);
        Assert.Equal(["kept", "refused"], held.Keys.Order(StringComparer.Ordinal));

        var body = JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["setErrs"] = new Dictionary<string, object> { [held["refused"]] = new { err = "invalid_request", description = "not for us" } },
            ["maxEvents"] = 10,
        });
        using var reported = await SendAsync(HttpMethod.Post, "/ssf/poll/" + stream, body, OrdersApi);
        var answered = JsonDocument.Parse(await reported.Content.ReadAsStringAsync()).RootElement.GetProperty("sets").EnumerateObject().Select(p => p.Name).ToList();
        Assert.Equal([held["kept"]], answered);
    }

    private static string StateOf(string set) =>
        Part(set.Split('.')[1]).GetProperty("events").GetProperty(SsfProtocol.VerificationEventType).GetProperty("state").GetString()!;

    private Task<HttpResponseMessage> SendAsync(HttpMethod method, string path, string? json, string? receiver) => SsfStreamApiClient.SendAsync(Host, method, path, json, receiver);

    private Task<string> CreateStreamAsync(string receiver, string body) => SsfStreamApiClient.CreateStreamAsync(Host, receiver, body);

    private Task<List<string>> PollAsync(string receiver, string stream) => SsfStreamApiClient.PollAsync(Host, receiver, stream);

    private async Task<JsonElement> ReadAsync(string receiver, string stream)
    {
        using var read = await SendAsync(HttpMethod.Get, "/ssf/streams?stream_id=" + stream, null, receiver);
        var text = await read.Content.ReadAsStringAsync();
        Assert.True(read.StatusCode == HttpStatusCode.OK, text);
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    private static JsonElement Part(string encoded) => SsfStreamApiClient.Part(encoded);
}

/// <summary>The stream API as a receiver calls it, for the conformance tables.</summary>
internal static class SsfStreamApiClient
{
    public const string OrdersApi = "api";

    /// <summary>A request with the receiver's client credentials (HTTP Basic), or none when <paramref name="receiver"/> is null.</summary>
    public static async Task<HttpResponseMessage> SendAsync(TokenServiceTestHost host, HttpMethod method, string path, string? json, string? receiver)
    {
        using var request = new HttpRequestMessage(method, path);
        request.Headers.Authorization = receiver switch
        {
            null => null,
            SharedSignalsHostFixture.BillingApi => Basic(SharedSignalsHostFixture.BillingApi, SharedSignalsHostFixture.BillingApiSecret),
            _ => Basic(OrdersApi, ApiSecret),
        };
        if (json is not null)
        {
            request.Content = new StringContent(json, Encoding.UTF8, "application/json");
        }

        return await host.Client.SendAsync(request);
    }

    /// <summary>Deletes the receiver's stream if it has one and creates one from <paramref name="body"/>; its id.</summary>
    public static async Task<string> CreateStreamAsync(TokenServiceTestHost host, string receiver, string body)
    {
        using (var list = await SendAsync(host, HttpMethod.Get, "/ssf/streams", null, receiver))
        {
            foreach (var existing in JsonDocument.Parse(await list.Content.ReadAsStringAsync()).RootElement.EnumerateArray())
            {
                using var deleted = await SendAsync(host, HttpMethod.Delete, "/ssf/streams?stream_id=" + existing.GetProperty("stream_id").GetString(), null, receiver);
                Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
            }
        }

        using var created = await SendAsync(host, HttpMethod.Post, "/ssf/streams", body, receiver);
        var text = await created.Content.ReadAsStringAsync();
        Assert.True(created.StatusCode == HttpStatusCode.Created, text);
        return JsonDocument.Parse(text).RootElement.GetProperty("stream_id").GetString()!;
    }

    /// <summary>Every SET the stream holds now (RFC 8936 §2.3), without acknowledging any.</summary>
    public static async Task<List<string>> PollAsync(TokenServiceTestHost host, string receiver, string stream)
    {
        using var response = await SendAsync(host, HttpMethod.Post, "/ssf/poll/" + stream, """{"maxEvents":100}""", receiver);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, text);
        return [.. JsonDocument.Parse(text).RootElement.GetProperty("sets").EnumerateObject().Select(p => p.Value.GetString()!)];
    }

    /// <summary>A JWS part (header or payload) as JSON.</summary>
    public static JsonElement Part(string encoded) => JsonDocument.Parse(Base64UrlEncoding.DecodeStrict(encoded)!).RootElement.Clone();
}
