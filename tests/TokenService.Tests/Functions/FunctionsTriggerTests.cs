using System.Net;
using System.Text.Json.Nodes;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using TokenFunctions;
using TokenService.Events;
using TokenService.Tests.Infrastructure;
using static TokenService.Tests.Infrastructure.TokenServiceTestHost;

namespace TokenService.Tests.Functions;

/// <summary>
/// The Functions app's non-HTTP functions, invoked as the host invokes them: the Event Grid trigger with one
/// event's JSON per call (the host splits batches), the timers with a TimerInfo; and the development IdP's HTTP
/// functions, which serve the README walkthrough in Development only.
/// </summary>
public sealed class FunctionsTriggerTests
{
    private static T Function<T>(TokenServiceTestHost host) where T : class =>
        ActivatorUtilities.CreateInstance<T>(host.Services.CreateScope().ServiceProvider);

    private static string AccountDisabledEvent(string userId, string id) => new JsonObject
    {
        ["id"] = id,
        ["topic"] = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.EventGrid/topics/idp",
        ["subject"] = "users/" + userId,
        ["eventType"] = IdpEventTypes.AccountDisabled,
        ["eventTime"] = DateTimeOffset.UtcNow.ToString("O"),
        ["dataVersion"] = "1",
        ["data"] = new JsonObject { ["userId"] = userId },
    }.ToJsonString();

    private static string GraphUserDeletedCloudEvent(string oid, string id) => new JsonObject
    {
        ["specversion"] = "1.0",
        ["id"] = id,
        ["source"] = "/tenants/00000000-0000-0000-0000-000000000001/applications/00000000-0000-0000-0000-000000000002",
        ["type"] = IdpEventTypes.GraphUserDeleted,
        ["subject"] = $"Users/{oid}",
        ["time"] = DateTimeOffset.UtcNow.ToString("O"),
        ["datacontenttype"] = "application/json",
        ["data"] = new JsonObject
        {
            ["@odata.type"] = "#Microsoft.Graph.ChangeNotification",
            ["changeType"] = "deleted",
            ["resource"] = $"Users/{oid}",
            ["resourceData"] = new JsonObject { ["@odata.type"] = "#Microsoft.Graph.User", ["@odata.id"] = $"Users/{oid}", ["id"] = oid },
            ["subscriptionId"] = "c6a2c2b4-0000-0000-0000-000000000000",
            ["tenantId"] = "00000000-0000-0000-0000-000000000001",
        },
    }.ToJsonString();

    [Fact]
    public async Task The_event_grid_trigger_ends_the_sessions_of_the_user_an_event_names_once_per_event()
    {
        await using var host = await StartFunctionsAsync(new Dictionary<string, string?> { ["Idp:UserIdClaim"] = "oid" });
        var oid = Guid.NewGuid().ToString();
        var other = Guid.NewGuid().ToString();
        var login = await host.LoginAsync("pairwise-" + oid, c => c["oid"] = oid);
        var bystander = await host.LoginAsync("pairwise-" + other, c => c["oid"] = other);

        var function = Function<EventFunctions>(host);
        var id = Guid.NewGuid().ToString();
        await function.IdpEvents(AccountDisabledEvent(oid, id), CancellationToken.None);
        Assert.False(await host.IsActiveAsync(login.AccessToken));
        Assert.True(await host.IsActiveAsync(bystander.AccessToken));

        // Redelivery of the same event (Event Grid delivers at least once) is acknowledged and changes nothing more.
        var again = await host.LoginAsync("pairwise-" + oid, c => c["oid"] = oid);
        await function.IdpEvents(AccountDisabledEvent(oid, id), CancellationToken.None);
        Assert.True(await host.IsActiveAsync(again.AccessToken));

        // CloudEvents 1.0 schema (Graph partner topic) through the same trigger.
        await function.IdpEvents(GraphUserDeletedCloudEvent(oid, Guid.NewGuid().ToString()), CancellationToken.None);
        Assert.False(await host.IsActiveAsync(again.AccessToken));
        Assert.True(await host.IsActiveAsync(bystander.AccessToken));
    }

    [Theory]
    [InlineData("not json")]
    [InlineData("{}")]
    [InlineData("""{"id":"a","eventType":"TokenService.Idp.AccountDisabled","eventTime":"yesterday","data":{"userId":"u"}}""")]
    [InlineData("""{"specversion":"1.0","id":"x","source":"idp","type":"TokenService.Idp.AccountDeleted","data":{"user":"no userId here"}}""")]
    public async Task A_malformed_event_throws_so_event_grid_retries_and_dead_letters_it_and_changes_nothing(string body)
    {
        await using var host = await StartFunctionsAsync(new Dictionary<string, string?> { ["Idp:UserIdClaim"] = "oid" });
        var login = await host.LoginAsync("u", c => c["oid"] = "u");
        var function = Function<EventFunctions>(host);
        await Assert.ThrowsAsync<MalformedEventException>(() => function.IdpEvents(body, CancellationToken.None));
        Assert.True(await host.IsActiveAsync(login.AccessToken));
    }

    [Fact]
    public async Task The_key_rotation_timer_publishes_the_next_key_ahead_of_use_when_the_active_key_is_due()
    {
        var time = new FakeTimeProvider(DateTimeOffset.Parse("2026-11-30T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        await using var host = await StartFunctionsAsync(new Dictionary<string, string?>
        {
            ["Keys:RotationInterval"] = "1.00:00:00",
            ["Keys:PropagationTime"] = "02:00:00",
            ["Keys:RetentionTime"] = "02:00:00",
        }, time: time);
        var timers = Function<TimerFunctions>(host);
        await timers.KeyRotationCheck(new TimerInfo(), CancellationToken.None);
        Assert.Single(await JwksKidsAsync(host));

        // Due for rotation: the next key is published (pending) while the current one keeps signing.
        time.Advance(TimeSpan.FromHours(23));
        var before = await host.LoginAsync("timer");
        await timers.KeyRotationCheck(new TimerInfo(), CancellationToken.None);
        var kids = await JwksKidsAsync(host);
        Assert.Equal(2, kids.Count);
        var after = await host.LoginAsync("timer");
        Assert.Equal(Kid(before.AccessToken), Kid(after.AccessToken));

        // Idempotent: a second run (two instances, or a retry) changes nothing.
        await timers.KeyRotationCheck(new TimerInfo(), CancellationToken.None);
        Assert.Equal(kids, await JwksKidsAsync(host));
    }

    [Fact]
    public async Task The_cleanup_timer_removes_expired_sessions()
    {
        var time = new FakeTimeProvider(DateTimeOffset.Parse("2026-11-30T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        await using var host = await StartFunctionsAsync(new Dictionary<string, string?> { ["TokenService:SessionIdleTimeout"] = "00:30:00" }, time: time);
        var login = await host.LoginAsync("cleanup-user");
        var sid = new Microsoft.IdentityModel.JsonWebTokens.JsonWebToken(login.AccessToken).GetClaim("sid").Value;
        var store = host.Services.GetRequiredService<TokenService.Sessions.ISessionStore>();
        Assert.NotNull(await store.GetSessionAsync(sid, CancellationToken.None));

        time.Advance(TimeSpan.FromDays(8));
        await Function<TimerFunctions>(host).Cleanup(new TimerInfo(), CancellationToken.None);
        Assert.Null(await store.GetSessionAsync(sid, CancellationToken.None));
    }

    [Fact]
    public async Task The_development_idp_serves_the_walkthrough_in_development_only()
    {
        var keys = Path.Combine(Path.GetTempPath(), "ts-dev-" + Guid.NewGuid().ToString("N"), "keys.json");
        var settings = new Dictionary<string, string?>(LocalSettings.ToConfiguration(LocalSettings.ReadSample())) { ["Keys:DevelopmentKeyPath"] = keys };
        settings.Remove("Storage:TableConnectionString"); // in-memory: no Azurite needed for this check
        using var development = FunctionsAppFactory.Build("Development", settings);
        await FunctionsAppFactory.ValidateStartupAsync(development);
        using var client = new HttpClient(new FunctionsHttpHandler(development.Services)) { BaseAddress = new Uri("http://127.0.0.1:7071/") };

        using var jwks = await client.GetAsync("/dev-idp/jwks.json");
        Assert.Equal(HttpStatusCode.OK, jwks.StatusCode);
        using var minted = await client.PostAsync("/dev-idp/id-token", new FormUrlEncodedContent([new("sub", "alice")]));
        Assert.Equal(HttpStatusCode.OK, minted.StatusCode);
        var idToken = (await JsonAsync(minted)).GetProperty("id_token").GetString()!;

        var exchange = new HttpRequestMessage(HttpMethod.Post, "/oauth2/token")
        {
            Content = new FormUrlEncodedContent(
            [
                new("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
                new("subject_token", idToken),
                new("subject_token_type", "urn:ietf:params:oauth:token-type:id_token"),
                new("scope", "api.read"),
            ]),
        };
        exchange.Headers.Authorization = Basic("dev-confidential", "dev-confidential-secret");
        using var issued = await client.SendAsync(exchange);
        var json = await JsonAsync(issued);
        Assert.True(issued.StatusCode == HttpStatusCode.OK, json.ToString());
        Assert.Equal("http://127.0.0.1:7071", new Microsoft.IdentityModel.JsonWebTokens.JsonWebToken(json.GetProperty("access_token").GetString()).Issuer);

        // The SPA sample signs in from its origin: it may read the ID token (CORS), and dev-spa may be granted the issuer
        // as an audience besides its API's (the sessions routes take tokens for this service); each token carries one.
        const string spaOrigin = "http://localhost:5173";
        using var mintForSpa = new HttpRequestMessage(HttpMethod.Post, "/dev-idp/id-token") { Content = new FormUrlEncodedContent([new("sub", "bob")]) };
        mintForSpa.Headers.Add("Origin", spaOrigin);
        using var mintedForSpa = await client.SendAsync(mintForSpa);
        Assert.Equal(HttpStatusCode.OK, mintedForSpa.StatusCode);
        Assert.Equal(spaOrigin, mintedForSpa.Headers.GetValues("Access-Control-Allow-Origin").Single());
        using var spaExchange = new HttpRequestMessage(HttpMethod.Post, "/oauth2/token")
        {
            Content = new FormUrlEncodedContent(
            [
                new("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
                new("subject_token", (await JsonAsync(mintedForSpa)).GetProperty("id_token").GetString()!),
                new("subject_token_type", "urn:ietf:params:oauth:token-type:id_token"),
                new("client_id", "dev-spa"),
                new("audience", "api://dev"),
                new("audience", "http://127.0.0.1:7071"),
            ]),
        };
        spaExchange.Headers.Add("Origin", spaOrigin);
        using var spaIssued = await client.SendAsync(spaExchange);
        var spaJson = await JsonAsync(spaIssued);
        Assert.True(spaIssued.StatusCode == HttpStatusCode.OK, spaJson.ToString());
        Assert.Equal(["api://dev"], new Microsoft.IdentityModel.JsonWebTokens.JsonWebToken(spaJson.GetProperty("access_token").GetString()).Audiences);

        // Outside Development the same routes do not exist for callers.
        await using var testing = await StartFunctionsAsync();
        using var refused = await testing.Client.PostAsync("/dev-idp/id-token", new FormUrlEncodedContent([new("sub", "alice")]));
        Assert.Equal(HttpStatusCode.NotFound, refused.StatusCode);
        Assert.Equal("application/problem+json", refused.Content.Headers.ContentType?.MediaType);
        Directory.Delete(Path.GetDirectoryName(keys)!, recursive: true);
    }

    private static async Task<List<string>> JwksKidsAsync(TokenServiceTestHost host)
    {
        using var response = await host.Client.GetAsync("/.well-known/jwks.json");
        var json = await JsonAsync(response);
        return json.GetProperty("keys").EnumerateArray().Select(k => k.GetProperty("kid").GetString()!).Order(StringComparer.Ordinal).ToList();
    }

    private static string Kid(string jwt) => new Microsoft.IdentityModel.JsonWebTokens.JsonWebToken(jwt).Kid;
}
