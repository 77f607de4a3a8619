using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Microsoft.Extensions.Time.Testing;
using TokenService.Tests.Infrastructure;
using static TokenService.Tests.Infrastructure.TokenServiceTestHost;

namespace TokenService.Tests.Http;

/// <summary>
/// docs/api.md, "Rate limits": request limits per source address and per client on the token, revocation, introspection,
/// management and event routes, and the back-off after failed client authentication, on both hosts. The request
/// limiter keeps its own (monotonic) time, so these tests send bursts well inside one refill period and never
/// wait for a refill; the back-off runs on the host's TimeProvider, a FakeTimeProvider here.
/// </summary>
public sealed class RateLimitTests
{
    private static readonly IPAddress OtherAddress = IPAddress.Parse("127.0.0.2");

    public static TheoryData<HostKind> Hosts => new() { HostKind.Standalone, HostKind.Functions };

    private static Dictionary<string, string?> Limits(int perIp = 600, int perClient = 12000) => new()
    {
        ["RateLimits:PerIpPerMinute"] = perIp.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["RateLimits:PerClientPerMinute"] = perClient.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    [Theory]
    [MemberData(nameof(Hosts))]
    public async Task A_burst_from_one_address_over_its_limit_gets_429_with_retry_after_and_other_budgets_are_untouched(HostKind kind)
    {
        await using var host = await StartAsync(kind, Limits(perIp: 3));
        await WarmUpAsync(host);

        // spa requests (a public client) are charged to their source address: three pass, the fourth is refused
        // before its ID token is even looked at.
        for (var i = 0; i < 3; i++)
        {
            using var passed = await SpaExchangeAsync(host.Client, "not-a-token");
            await AssertOAuthErrorAsync(passed, "invalid_request");
        }

        using var refused = await SpaExchangeAsync(host.Client, "not-a-token");
        await AssertTooManyAsync(refused, oauth: true);
        // A browser app can read the status and the delay: the 429 carries the CORS answer and exposes Retry-After.
        Assert.Equal(SpaOrigin, refused.Headers.GetValues("Access-Control-Allow-Origin").Single());
        Assert.Contains("Retry-After", refused.Headers.GetValues("Access-Control-Expose-Headers").Single(), StringComparison.OrdinalIgnoreCase);

        // A failed client authentication from that address is refused too, before its secret is compared.
        using var guess = await host.ExchangeAsync("not-a-token", "nobody", "whatever-secret");
        await AssertTooManyAsync(guess, oauth: true);

        // An authenticated server-side client from the same address is charged to itself, not to the address.
        using var web = await host.ExchangeAsync(host.Idp.IdToken("burst-web"));
        Assert.Equal(HttpStatusCode.OK, web.StatusCode);

        // Each route has its own budget, and so has every other address.
        using var revoke = await Send(host.Client, "/oauth2/revoke", [new("client_id", "spa"), new("token", "unknown")], origin: SpaOrigin);
        Assert.Equal(HttpStatusCode.OK, revoke.StatusCode);
        using var other = host.CreateClientFrom(OtherAddress);
        using var fromOther = await SpaExchangeAsync(other, "not-a-token");
        await AssertOAuthErrorAsync(fromOther, "invalid_request");
    }

    [Theory]
    [MemberData(nameof(Hosts))]
    public async Task An_authenticated_client_over_its_limit_gets_429_and_other_clients_do_not(HostKind kind)
    {
        await using var host = await StartAsync(kind, Limits(perClient: 3));
        await WarmUpAsync(host);
        for (var i = 0; i < 3; i++)
        {
            using var ok = await host.ExchangeAsync(host.Idp.IdToken("client-burst-" + i));
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }

        // From any address: the budget belongs to the client.
        using var other = host.CreateClientFrom(OtherAddress);
        using var refused = await Send(other, "/oauth2/token", ExchangeForm(host.Idp.IdToken("client-burst-4")), Basic("web", WebSecret));
        await AssertTooManyAsync(refused, oauth: true);

        using var otherClient = await host.ExchangeAsync(host.Idp.IdToken("client-burst-5"), "other-web", OtherWebSecret);
        Assert.Equal(HttpStatusCode.OK, otherClient.StatusCode);
        // The introspection route has a budget of its own.
        Assert.False(await host.IsActiveAsync("not-a-token"));
    }

    [Theory]
    [MemberData(nameof(Hosts))]
    public async Task Management_and_event_routes_are_limited_with_problem_details(HostKind kind)
    {
        await using var host = await StartAsync(kind, Limits(perIp: 2));
        await WarmUpAsync(host);

        for (var i = 0; i < 2; i++)
        {
            using var unauthenticated = await host.Client.PostAsync("/management/users/someone/revoke", null);
            Assert.Equal(HttpStatusCode.Unauthorized, unauthenticated.StatusCode);
        }

        using var managementRefused = await host.Client.PostAsync("/management/users/someone/revoke", null);
        await AssertTooManyAsync(managementRefused, oauth: false);

        // The admin client is charged to itself: an incident's force-logout is not stopped by its address's budget.
        using var admin = new HttpRequestMessage(HttpMethod.Post, "/management/users/someone/revoke");
        admin.Headers.Authorization = Basic("ops", OpsSecret);
        using var adminResponse = await host.Client.SendAsync(admin);
        Assert.Equal(HttpStatusCode.OK, adminResponse.StatusCode);

        // Webhook deliveries without the key are charged to the address; Event Grid's own (with the key) are not.
        for (var i = 0; i < 2; i++)
        {
            using var wrongKey = await DeliverAsync(host, "wrong-key-wrong-key");
            Assert.Equal(HttpStatusCode.Unauthorized, wrongKey.StatusCode);
        }

        using var webhookRefused = await DeliverAsync(host, "wrong-key-wrong-key");
        await AssertTooManyAsync(webhookRefused, oauth: false);
        for (var i = 0; i < 3; i++)
        {
            using var delivered = await DeliverAsync(host, WebhookSecret);
            Assert.Equal(HttpStatusCode.OK, delivered.StatusCode);
        }

        // SSF pushes are authenticated only by what they carry: every one is charged to its address.
        for (var i = 0; i < 2; i++)
        {
            using var push = await SsfPushAsync(host);
            Assert.Equal(HttpStatusCode.BadRequest, push.StatusCode);
        }

        using var pushRefused = await SsfPushAsync(host);
        await AssertTooManyAsync(pushRefused, oauth: false);
    }

    [Theory]
    [MemberData(nameof(Hosts))]
    public async Task A_default_host_serves_the_load_pattern_of_one_address_without_429(HostKind kind)
    {
        // The defaults (600 a minute per address and route, 12000 per client and route) are far above this: 150 logins
        // and 150 refreshes of a server-side client and 100 spa logins and refreshes, from one address, in seconds.
        await using var host = await StartAsync(kind);
        var statuses = new System.Collections.Concurrent.ConcurrentBag<HttpStatusCode>();
        await Parallel.ForAsync(0, 150, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (i, _) =>
        {
            var login = await host.LoginAsync("load-" + i);
            using var refresh = await host.RefreshAsync(login.RefreshToken);
            statuses.Add(refresh.StatusCode);
        });
        await Parallel.ForAsync(0, 50, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (i, _) =>
        {
            using var login = await SpaExchangeAsync(host.Client, host.Idp.IdToken("spa-load-" + i));
            statuses.Add(login.StatusCode);
            var cookie = login.Headers.GetValues("Set-Cookie").Single().Split(';')[0];
            using var refresh = await Send(host.Client, "/oauth2/token", [new("grant_type", "refresh_token"), new("client_id", "spa")], origin: SpaOrigin, cookie: cookie);
            statuses.Add(refresh.StatusCode);
        });

        Assert.Equal(250, statuses.Count);
        Assert.All(statuses, s => Assert.Equal(HttpStatusCode.OK, s));
    }

    [Theory]
    [MemberData(nameof(Hosts))]
    public async Task With_rate_limits_disabled_nothing_is_refused(HostKind kind)
    {
        var settings = Limits(perIp: 1, perClient: 1);
        settings["RateLimits:Enabled"] = "false";
        await using var host = await StartAsync(kind, settings);
        for (var i = 0; i < 8; i++)
        {
            using var spa = await SpaExchangeAsync(host.Client, "not-a-token");
            await AssertOAuthErrorAsync(spa, "invalid_request");
            using var wrong = await host.ExchangeAsync("not-a-token", "web", "wrong-secret");
            await AssertOAuthErrorAsync(wrong, "invalid_client", HttpStatusCode.Unauthorized);
        }
    }

    [Theory]
    [MemberData(nameof(Hosts))]
    public async Task Failed_client_authentication_opens_a_doubling_window_answered_429_until_a_success_resets_it(HostKind kind)
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var settings = Limits();
        settings["RateLimits:FailedAuthBackoffMax"] = "00:00:05";
        await using var host = await StartAsync(kind, settings, time);
        await WarmUpAsync(host);

        // The first four failures answer 401 at once (a mistyped or rotated secret); the fifth opens a 1 s window.
        for (var i = 0; i < 5; i++)
        {
            using var wrong = await host.ExchangeAsync("not-a-token", "web", "guess-" + i);
            await AssertOAuthErrorAsync(wrong, "invalid_client", HttpStatusCode.Unauthorized);
        }

        // Inside the window even the right secret is refused unread: guessing cannot go faster than the windows.
        using (var right = await host.ExchangeAsync(host.Idp.IdToken("patient")))
        {
            await AssertTooManyAsync(right, oauth: true, seconds: 1);
        }

        // Each further failure doubles the window, up to FailedAuthBackoffMax (5 s): 2, 4, 5, 5.
        foreach (var (wait, expected) in ((int, int)[])[(1, 2), (2, 4), (4, 5), (5, 5)])
        {
            time.Advance(TimeSpan.FromSeconds(wait));
            using var wrong = await host.ExchangeAsync("not-a-token", "web", "guess-again");
            await AssertOAuthErrorAsync(wrong, "invalid_client", HttpStatusCode.Unauthorized);
            using var inWindow = await host.ExchangeAsync("not-a-token", "web", "guess-in-window");
            await AssertTooManyAsync(inWindow, oauth: true, seconds: expected);
        }

        // Other client ids are not affected, nor is the same client id from another address (no lockout by others).
        using (var otherClient = await host.ExchangeAsync(host.Idp.IdToken("bystander"), "other-web", OtherWebSecret))
        {
            Assert.Equal(HttpStatusCode.OK, otherClient.StatusCode);
        }

        using (var other = host.CreateClientFrom(OtherAddress))
        using (var fromOther = await Send(other, "/oauth2/token", ExchangeForm(host.Idp.IdToken("elsewhere")), Basic("web", WebSecret)))
        {
            Assert.Equal(HttpStatusCode.OK, fromOther.StatusCode);
        }

        // After the window a success resets the count: four failures answer 401 again before any window.
        time.Advance(TimeSpan.FromSeconds(5));
        using (var success = await host.ExchangeAsync(host.Idp.IdToken("patient")))
        {
            Assert.Equal(HttpStatusCode.OK, success.StatusCode);
        }

        for (var i = 0; i < 4; i++)
        {
            using var wrong = await host.ExchangeAsync("not-a-token", "web", "after-reset-" + i);
            await AssertOAuthErrorAsync(wrong, "invalid_client", HttpStatusCode.Unauthorized);
        }

        using var stillOpen = await host.ExchangeAsync(host.Idp.IdToken("patient-again"));
        Assert.Equal(HttpStatusCode.OK, stillOpen.StatusCode);
    }

    [Theory]
    [MemberData(nameof(Hosts))]
    public async Task The_admin_client_backs_off_on_the_management_route_too(HostKind kind)
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var host = await StartAsync(kind, Limits(), time);
        for (var i = 0; i < 5; i++)
        {
            using var wrong = await RevokeUserAsync(host, "ops", "wrong-" + i);
            Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
        }

        using var refused = await RevokeUserAsync(host, "ops", OpsSecret);
        await AssertTooManyAsync(refused, oauth: false, seconds: 1);
        time.Advance(TimeSpan.FromSeconds(1));
        using var accepted = await RevokeUserAsync(host, "ops", OpsSecret);
        Assert.Equal(HttpStatusCode.OK, accepted.StatusCode);
    }

    [Fact]
    public async Task Invalid_rate_limit_settings_stop_the_start()
    {
        var settings = Limits(perIp: -1);
        settings["RateLimits:FailedAuthBackoffMax"] = "02:00:00";
        var failure = await Assert.ThrowsAnyAsync<Exception>(async () => await (await StartAsync(HostKind.Standalone, settings)).DisposeAsync());
        Assert.Contains("RateLimits:PerIpPerMinute", failure.ToString(), StringComparison.Ordinal);
        Assert.Contains("RateLimits:FailedAuthBackoffMax", failure.ToString(), StringComparison.Ordinal);
    }

    // ---- helpers -------------------------------------------------------------------------------------------------

    /// <summary>Creates the signing key before a burst, so that no request of the burst waits for it.</summary>
    private static async Task WarmUpAsync(TokenServiceTestHost host)
    {
        using var jwks = await host.Client.GetAsync("/.well-known/jwks.json");
        Assert.Equal(HttpStatusCode.OK, jwks.StatusCode);
    }

    private static async Task AssertTooManyAsync(HttpResponseMessage response, bool oauth, int? seconds = null)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.TooManyRequests, $"Expected 429 but got {(int)response.StatusCode}: {body}");
        var retryAfter = response.Headers.RetryAfter?.Delta;
        Assert.True(retryAfter is { } delay && delay >= TimeSpan.FromSeconds(1) && delay <= TimeSpan.FromMinutes(1), $"Retry-After: {response.Headers.RetryAfter}");
        if (seconds is { } expected)
        {
            Assert.Equal(TimeSpan.FromSeconds(expected), retryAfter);
        }

        if (oauth)
        {
            await AssertOAuthErrorAsync(response, "temporarily_unavailable", HttpStatusCode.TooManyRequests);
        }
        else
        {
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            Assert.Contains("\"status\":429", body, StringComparison.Ordinal);
        }
    }

    private static List<KeyValuePair<string, string>> ExchangeForm(string idToken) =>
    [
        new("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
        new("subject_token", idToken),
        new("subject_token_type", "urn:ietf:params:oauth:token-type:id_token"),
    ];

    private static Task<HttpResponseMessage> SpaExchangeAsync(HttpClient client, string idToken) =>
        Send(client, "/oauth2/token", [.. ExchangeForm(idToken), new("client_id", "spa")], origin: SpaOrigin);

    private static Task<HttpResponseMessage> Send(
        HttpClient client, string path, IEnumerable<KeyValuePair<string, string>> form, AuthenticationHeaderValue? auth = null, string? origin = null, string? cookie = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new FormUrlEncodedContent(form) };
        request.Headers.Authorization = auth;
        if (origin is not null)
        {
            request.Headers.Add("Origin", origin);
        }

        if (cookie is not null)
        {
            request.Headers.Add("Cookie", cookie);
        }

        return client.SendAsync(request);
    }

    private static Task<HttpResponseMessage> RevokeUserAsync(TokenServiceTestHost host, string clientId, string secret)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/management/users/someone/revoke");
        request.Headers.Authorization = Basic(clientId, secret);
        return host.Client.SendAsync(request);
    }

    private static Task<HttpResponseMessage> DeliverAsync(TokenServiceTestHost host, string key)
    {
        const string validation = """[{"id":"rl-1","topic":"/subscriptions/x/resourceGroups/rg/providers/Microsoft.EventGrid/topics/idp","subject":"","data":{"validationCode":"code-1"},"eventType":"Microsoft.EventGrid.SubscriptionValidationEvent","eventTime":"2026-11-23T05:00:00Z","metadataVersion":"1","dataVersion":"1"}]""";
        var request = new HttpRequestMessage(HttpMethod.Post, "/events/idp?key=" + Uri.EscapeDataString(key)) { Content = new StringContent(validation, Encoding.UTF8, "application/json") };
        return host.Client.SendAsync(request);
    }

    private static Task<HttpResponseMessage> SsfPushAsync(TokenServiceTestHost host)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/events/ssf") { Content = new StringContent("a.b.c", Encoding.ASCII) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/secevent+jwt");
        return host.Client.SendAsync(request);
    }
}
