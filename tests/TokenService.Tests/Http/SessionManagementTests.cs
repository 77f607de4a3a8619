using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Microsoft.IdentityModel.JsonWebTokens;
using TokenService.Tests.Infrastructure;
using static TokenService.Tests.Infrastructure.TokenServiceTestHost;

namespace TokenService.Tests.Http;

/// <summary>ASVS V7 session management: per-user limit, a user's own sessions, admin force-logout.</summary>
public sealed class SessionManagementTests(HostFixture fixture) : SessionManagementTests<HostFixture>(fixture);

/// <summary>The same tests against the Functions app (its HTTP functions invoked in-process).</summary>
public sealed class SessionManagementTestsOnFunctions(FunctionsHostFixture fixture) : SessionManagementTests<FunctionsHostFixture>(fixture);

/// <summary>The same tests against the published app under a real Functions host (<see cref="RealFunctionsHostPool"/>).</summary>
[RealFunctionsHostTier]
[Collection(RealFunctionsHostCollection.Name)]
public sealed class SessionManagementTestsOnRealHost(RealFunctionsHostFixture fixture) : SessionManagementTests<RealFunctionsHostFixture>(fixture);

public abstract class SessionManagementTests<TFixture>(TFixture fixture) : IClassFixture<TFixture>
    where TFixture : HostFixture
{
    private TokenServiceTestHost Host => fixture.Host;

    private Task<HttpResponseMessage> SendAsync(HttpMethod method, string path, string? accessToken)
    {
        var request = new HttpRequestMessage(method, path);
        if (accessToken is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", accessToken);
        }

        return Host.Client.SendAsync(request);
    }

    private static string Sid(string accessToken) => new JsonWebToken(accessToken).GetClaim("sid").Value;

    [Fact]
    public async Task The_fourth_session_of_a_user_ends_the_oldest()
    {
        var user = "limit-" + Guid.NewGuid().ToString("N");
        var logins = new List<TokenPair>();
        for (var i = 0; i < 4; i++)
        {
            logins.Add(await Host.LoginAsync(user));
        }

        Assert.False(await Host.IsActiveAsync(logins[0].AccessToken));
        using var oldest = await Host.RefreshAsync(logins[0].RefreshToken);
        await AssertOAuthErrorAsync(oldest, "invalid_grant");
        foreach (var login in logins.Skip(1))
        {
            Assert.True(await Host.IsActiveAsync(login.AccessToken));
        }
    }

    [Fact]
    public async Task A_user_lists_ends_one_and_ends_all_other_sessions()
    {
        var user = "self-" + Guid.NewGuid().ToString("N");
        var a = await Host.LoginAsync(user);
        var b = await Host.LoginAsync(user);
        var c = await Host.LoginAsync(user, audience: Issuer);

        using var list = await SendAsync(HttpMethod.Get, "/sessions", c.AccessToken);
        var sessions = (await JsonAsync(list)).GetProperty("sessions").EnumerateArray().ToList();
        Assert.Equal(3, sessions.Count);
        Assert.Single(sessions, s => s.GetProperty("current").GetBoolean() && s.GetProperty("sid").GetString() == Sid(c.AccessToken));

        using var endOne = await SendAsync(HttpMethod.Delete, "/sessions/" + Sid(a.AccessToken), c.AccessToken);
        Assert.Equal(HttpStatusCode.NoContent, endOne.StatusCode);
        Assert.False(await Host.IsActiveAsync(a.AccessToken));

        using var others = await SendAsync(HttpMethod.Post, "/sessions/revoke-others", c.AccessToken);
        Assert.Equal(1, (await JsonAsync(others)).GetProperty("revoked").GetInt32());
        Assert.False(await Host.IsActiveAsync(b.AccessToken));
        using var after = await SendAsync(HttpMethod.Get, "/sessions", c.AccessToken);
        var remaining = (await JsonAsync(after)).GetProperty("sessions").EnumerateArray().ToList();
        Assert.Equal(Sid(c.AccessToken), Assert.Single(remaining).GetProperty("sid").GetString());
    }

    /// <summary>
    /// docs/api.md, "GET /sessions": two browsers of one application used to list as two identical rows. Each session now says
    /// which application (its configured display name), which browser and system it was opened from (a label from the
    /// User-Agent at sign-in, the header itself not kept), and its two deadlines apart: the idle one moves with use,
    /// the absolute one does not.
    /// </summary>
    [Fact]
    public async Task Each_listed_session_names_its_application_browser_and_system_and_both_deadlines()
    {
        const string firefoxOnWindows = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0";
        const string safariOnIphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1";
        var user = UniqueUser("devices");
        var laptop = await LoginWithUserAgentAsync(user, firefoxOnWindows);
        var phone = await LoginWithUserAgentAsync(user, safariOnIphone);
        var reader = await Host.LoginAsync(user, audience: Issuer); // sent no User-Agent (MaxSessionsPerUser is 3)

        using var list = await SendAsync(HttpMethod.Get, "/sessions", reader.AccessToken);
        var body = await list.Content.ReadAsStringAsync();
        var sessions = (await JsonAsync(list)).GetProperty("sessions").EnumerateArray().ToDictionary(s => s.GetProperty("sid").GetString()!);
        Assert.Equal("Firefox on Windows", sessions[Sid(laptop.AccessToken)].GetProperty("device").GetString());
        Assert.Equal("Safari on iOS", sessions[Sid(phone.AccessToken)].GetProperty("device").GetString());
        Assert.Equal(JsonValueKind.Null, sessions[Sid(reader.AccessToken)].GetProperty("device").ValueKind);
        Assert.DoesNotContain("Gecko/20100101", body, StringComparison.Ordinal); // the label, never the header
        Assert.All(sessions.Values, s =>
        {
            Assert.Equal("web", s.GetProperty("client_id").GetString());
            Assert.Equal(WebDisplayName, s.GetProperty("client_name").GetString());
            var idle = s.GetProperty("idle_expires_at").GetDateTimeOffset();
            var absolute = s.GetProperty("absolute_expires_at").GetDateTimeOffset();
            Assert.True(idle < absolute, s.ToString());
            Assert.Equal(idle, s.GetProperty("expires_at").GetDateTimeOffset());
            Assert.True(s.GetProperty("created_at").GetDateTimeOffset() <= s.GetProperty("last_activity_at").GetDateTimeOffset());
        });
    }

    private async Task<TokenPair> LoginWithUserAgentAsync(string user, string? userAgent)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/oauth2/token")
        {
            Content = new FormUrlEncodedContent(
            [
                new("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
                new("subject_token", Host.Idp.IdToken(user)),
                new("subject_token_type", "urn:ietf:params:oauth:token-type:id_token"),
            ]),
        };
        request.Headers.Authorization = Basic("web", WebSecret);
        if (userAgent is not null)
        {
            request.Headers.TryAddWithoutValidation("User-Agent", userAgent);
        }

        using var response = await Host.Client.SendAsync(request);
        var json = await JsonAsync(response);
        Assert.True(response.StatusCode == HttpStatusCode.OK, json.ToString());
        return new TokenPair(json.GetProperty("access_token").GetString()!, json.GetProperty("refresh_token").GetString()!);
    }

    [Fact]
    public async Task A_user_cannot_end_another_users_session()
    {
        var mine = await Host.LoginAsync("mine-" + Guid.NewGuid().ToString("N"), audience: Issuer);
        var theirs = await Host.LoginAsync("theirs-" + Guid.NewGuid().ToString("N"));
        using var response = await SendAsync(HttpMethod.Delete, "/sessions/" + Sid(theirs.AccessToken), mine.AccessToken);
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.True(await Host.IsActiveAsync(theirs.AccessToken));

        using var garbage = await SendAsync(HttpMethod.Delete, "/sessions/..%2F..%2Fetc", mine.AccessToken);
        Assert.Equal(HttpStatusCode.NotFound, garbage.StatusCode);
    }

    [Fact]
    public async Task Session_endpoints_require_an_active_bearer_token()
    {
        using var none = await SendAsync(HttpMethod.Get, "/sessions", null);
        Assert.Equal(HttpStatusCode.Unauthorized, none.StatusCode);
        Assert.StartsWith("Bearer", none.Headers.WwwAuthenticate.ToString(), StringComparison.Ordinal);

        var login = await Host.LoginAsync("revoked-bearer", audience: Issuer);
        using (var allowed = await SendAsync(HttpMethod.Get, "/sessions", login.AccessToken))
        {
            Assert.Equal(HttpStatusCode.OK, allowed.StatusCode);
        }

        using var revoke = await Host.PostFormAsync("/oauth2/revoke", [new("token", login.AccessToken)], Basic("web", WebSecret));
        using var denied = await SendAsync(HttpMethod.Get, "/sessions", login.AccessToken);
        Assert.Equal(HttpStatusCode.Unauthorized, denied.StatusCode);
        Assert.Contains("invalid_token", denied.Headers.WwwAuthenticate.ToString(), StringComparison.Ordinal);

        using var forged = await SendAsync(HttpMethod.Get, "/sessions", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.");
        Assert.Equal(HttpStatusCode.Unauthorized, forged.StatusCode);
    }

    [Fact]
    public async Task Session_endpoints_refuse_a_token_issued_for_another_audience()
    {
        // Any API that receives a user's token must not be able to list or end that user's sessions.
        var user = "api-token-" + Guid.NewGuid().ToString("N");
        var victim = await Host.LoginAsync(user);
        var apiToken = await Host.LoginAsync(user, audience: "api://orders");
        Assert.Equal(["api://orders"], new JsonWebToken(apiToken.AccessToken).Audiences);

        foreach (var (method, path) in new[] { (HttpMethod.Get, "/sessions"), (HttpMethod.Delete, "/sessions/" + Sid(victim.AccessToken)), (HttpMethod.Post, "/sessions/revoke-others") })
        {
            using var refused = await SendAsync(method, path, apiToken.AccessToken);
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
            var challenge = Assert.Single(refused.Headers.WwwAuthenticate);
            Assert.Equal("Bearer", challenge.Scheme);
            Assert.Contains("error=\"invalid_token\"", challenge.Parameter, StringComparison.Ordinal);
            Assert.Equal("application/problem+json", refused.Content.Headers.ContentType?.MediaType);
        }

        Assert.True(await Host.IsActiveAsync(victim.AccessToken));
        Assert.True(await Host.IsActiveAsync(apiToken.AccessToken));

        // Without an audience parameter a client gets its APIs, never the session endpoints, even when it may ask for them.
        var byDefault = await Host.LoginAsync(user);
        Assert.DoesNotContain(Issuer, new JsonWebToken(byDefault.AccessToken).Audiences);
        using var defaultRefused = await SendAsync(HttpMethod.Get, "/sessions", byDefault.AccessToken);
        Assert.Equal(HttpStatusCode.Unauthorized, defaultRefused.StatusCode);
    }

    [Fact]
    public async Task Only_clients_that_list_the_issuer_get_tokens_for_the_session_endpoints_and_only_for_them()
    {
        using var notListed = await Host.ExchangeAsync(Host.Idp.IdToken("not-listed"), "other-web", OtherWebSecret, ("audience", Issuer));
        await AssertOAuthErrorAsync(notListed, "invalid_target");


        using var spa = await Host.ExchangeAsync(Host.Idp.IdToken("spa-sessions"), "spa", null, ("audience", Issuer));
        var json = await JsonAsync(spa);
        Assert.True(spa.StatusCode == HttpStatusCode.OK, json.ToString());
        var token = json.GetProperty("access_token").GetString()!;
        Assert.Equal([Issuer], new JsonWebToken(token).Audiences);
        using var list = await SendAsync(HttpMethod.Get, "/sessions", token);
        Assert.Equal(HttpStatusCode.OK, list.StatusCode);
    }

    [Fact]
    public async Task An_admin_ends_every_session_of_a_user()
    {
        var user = "fired-" + Guid.NewGuid().ToString("N");
        var a = await Host.LoginAsync(user);
        var b = await Host.LoginAsync(user);

        using var notAdmin = new HttpRequestMessage(HttpMethod.Post, $"/management/users/{user}/revoke");
        notAdmin.Headers.Authorization = Basic("web", WebSecret);
        using var refused = await Host.Client.SendAsync(notAdmin);
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        Assert.True(await Host.IsActiveAsync(a.AccessToken));

        using var admin = new HttpRequestMessage(HttpMethod.Post, $"/management/users/{user}/revoke");
        admin.Headers.Authorization = Basic("ops", OpsSecret);
        using var done = await Host.Client.SendAsync(admin);
        Assert.Equal(HttpStatusCode.OK, done.StatusCode);
        Assert.Equal(2, (await JsonAsync(done)).GetProperty("revoked").GetInt32());
        Assert.False(await Host.IsActiveAsync(a.AccessToken));
        Assert.False(await Host.IsActiveAsync(b.AccessToken));
        using var refresh = await Host.RefreshAsync(b.RefreshToken);
        await AssertOAuthErrorAsync(refresh, "invalid_grant");
    }

    private Task<HttpResponseMessage> ForceLogoutByPathAsync(string userId)
    {
        // Percent-encoded as RFC 3986 §2.1 asks (every octet outside the unreserved set).
        var request = new HttpRequestMessage(HttpMethod.Post, new Uri("/management/users/" + Uri.EscapeDataString(userId) + "/revoke", UriKind.Relative));
        request.Headers.Authorization = Basic("ops", OpsSecret);
        return Host.Client.SendAsync(request);
    }

    private Task<HttpResponseMessage> ForceLogoutByFormAsync(string userId) =>
        Host.PostFormAsync("/management/users/revoke", [new("user_id", userId)], Basic("ops", OpsSecret));

    // The reserved characters come after a unique prefix, so that none of them is followed by the prefix's hex digits.
    private static string UniqueUser(string id) => Guid.NewGuid().ToString("N")[..8] + "-" + id;

    [Theory]
    [InlineData(SpaOrigin)]
    [InlineData("https://tokens.test.example")]
    [InlineData("null")]
    public async Task Every_management_route_refuses_a_request_carrying_an_origin_and_changes_nothing(string origin)
    {
        var user = "browser-driven-" + Guid.NewGuid().ToString("N");
        var login = await Host.LoginAsync(user);
        var keysBefore = await Host.Client.GetStringAsync("/.well-known/jwks.json");
        foreach (var path in new[] { $"/management/users/{user}/revoke", "/management/users/revoke?user_id=" + user, "/management/keys/rotate?immediate=true", "/management/keys/some-kid/revoke" })
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, path);
            request.Headers.Authorization = Basic("ops", OpsSecret);
            request.Headers.Add("Origin", origin);
            using var response = await Host.Client.SendAsync(request);
            Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            Assert.False(response.Headers.Contains("Access-Control-Allow-Origin"));
        }

        Assert.True(await Host.IsActiveAsync(login.AccessToken));
        Assert.Equal(keysBefore, await Host.Client.GetStringAsync("/.well-known/jwks.json"));
    }

    [Theory]
    [InlineData("100%")]
    [InlineData("x+y")]
    [InlineData("a:b@c")]
    [InlineData("with space")]
    [InlineData("Zoë 山田")]
    [InlineData("..")]
    public async Task Force_logout_by_path_finds_a_user_whose_id_holds_reserved_characters(string id)
    {
        var user = UniqueUser(id);
        var login = await Host.LoginAsync(user);

        using var done = await ForceLogoutByPathAsync(user);
        var json = await JsonAsync(done);
        Assert.True(done.StatusCode == HttpStatusCode.OK, json.ToString());
        Assert.Equal(user, json.GetProperty("user_id").GetString());
        Assert.Equal(1, json.GetProperty("revoked").GetInt32());
        Assert.False(await Host.IsActiveAsync(login.AccessToken));
    }

    [Theory]
    [InlineData("org/alice")]
    [InlineData("100%")]
    [InlineData("50%2F50")]
    [InlineData("x+y")]
    [InlineData("a:b@c")]
    [InlineData("with space")]
    [InlineData("Zoë 山田")]
    [InlineData("..")]
    public async Task Force_logout_by_form_ends_exactly_the_sessions_of_the_named_user(string id)
    {
        var user = UniqueUser(id);
        var login = await Host.LoginAsync(user);
        var bystander = await Host.LoginAsync(user.Replace("/", "%2F", StringComparison.Ordinal) + "-other");

        using var done = await ForceLogoutByFormAsync(user);
        var json = await JsonAsync(done);
        Assert.True(done.StatusCode == HttpStatusCode.OK, json.ToString());
        Assert.Equal(user, json.GetProperty("user_id").GetString());
        Assert.Equal(1, json.GetProperty("revoked").GetInt32());
        Assert.False(await Host.IsActiveAsync(login.AccessToken));
        Assert.True(await Host.IsActiveAsync(bystander.AccessToken));
    }

    [Fact]
    public async Task Force_logout_by_path_never_ends_the_sessions_of_a_user_whose_id_is_the_encoded_form()
    {
        // docs/api.md, "Under a Functions host": behind the Functions host, a client's "a%2Fb" reached the worker as "a%252Fb", decoded to "a%2Fb":
        // the force logout of "a/b" answered 200 and ended the sessions of the user literally named "a%2Fb".
        var prefix = UniqueUser("org");
        var slash = await Host.LoginAsync(prefix + "/alice");
        var literal = await Host.LoginAsync(prefix + "%2Falice");

        using var response = await ForceLogoutByPathAsync(prefix + "/alice");
        var json = await JsonAsync(response);
        if (Host.Kind != HostKind.Standalone)
        {
            // The worker (in-process with the host's hop modelled, or under a real Functions host) cannot tell the
            // client's "a%2Fb" from its "a%252Fb": refused, pointing to the form route.
            Assert.True(response.StatusCode == HttpStatusCode.BadRequest, json.ToString());
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            Assert.Equal("/management/users/revoke", json.GetProperty("form_route").GetString());
            Assert.True(await Host.IsActiveAsync(slash.AccessToken));
        }
        else
        {
            Assert.True(response.StatusCode == HttpStatusCode.OK, json.ToString());
            Assert.Equal(prefix + "/alice", json.GetProperty("user_id").GetString());
            Assert.False(await Host.IsActiveAsync(slash.AccessToken));
        }

        Assert.True(await Host.IsActiveAsync(literal.AccessToken));
    }

    [Fact]
    public async Task Force_logout_by_path_refuses_an_id_that_is_still_percent_encoded_and_names_the_form_route()
    {
        // "50%2F50" is sent as 50%252F50; after one decoding it still reads as an escape, which is what a proxy's
        // re-encoding looks like too: the same 400 on both hosts, never a 200 for an id that may have been altered.
        var user = UniqueUser("50%2F50");
        var login = await Host.LoginAsync(user);

        using var response = await ForceLogoutByPathAsync(user);
        var json = await JsonAsync(response);
        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, json.ToString());
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("/management/users/revoke", json.GetProperty("form_route").GetString());
        Assert.Contains("user_id", json.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.True(await Host.IsActiveAsync(login.AccessToken));

        using var byForm = await ForceLogoutByFormAsync(user);
        Assert.Equal(1, (await JsonAsync(byForm)).GetProperty("revoked").GetInt32());
        Assert.False(await Host.IsActiveAsync(login.AccessToken));
    }

    [Theory]
    [InlineData("ctl\r\nuser")]
    [InlineData("\u202euser")]
    [InlineData("line\u2028sep")]
    [InlineData("del\u007f")]
    [InlineData("")]
    public async Task Force_logout_by_form_refuses_an_id_that_no_session_can_have(string id)
    {
        using var response = await ForceLogoutByFormAsync(id);
        var json = await JsonAsync(response);
        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, json.ToString());
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task Force_logout_by_form_needs_an_admin_client_and_a_form_with_user_id()
    {
        var user = UniqueUser("form-auth");
        var login = await Host.LoginAsync(user);

        using var notAdmin = await Host.PostFormAsync("/management/users/revoke", [new("user_id", user)], Basic("web", WebSecret));
        Assert.Equal(HttpStatusCode.Unauthorized, notAdmin.StatusCode);

        using var noUser = await Host.PostFormAsync("/management/users/revoke", [new("user", user)], Basic("ops", OpsSecret));
        Assert.Equal(HttpStatusCode.BadRequest, noUser.StatusCode);
        Assert.Equal("application/problem+json", noUser.Content.Headers.ContentType?.MediaType);

        using var twice = await Host.PostFormAsync("/management/users/revoke", [new("user_id", user), new("user_id", "other")], Basic("ops", OpsSecret));
        Assert.Equal(HttpStatusCode.BadRequest, twice.StatusCode);
        Assert.True(await Host.IsActiveAsync(login.AccessToken));
    }

    [Fact]
    public async Task A_session_granted_an_api_and_the_issuer_never_gets_one_token_for_both()
    {
        // A token for both an API and the session endpoints would hand that API the user's sessions: the session may
        // hold both audiences, each token carries the APIs or the issuer alone (RFC 8707 §2.2 on refresh).
        using var mixed = await Host.ExchangeAsync(Host.Idp.IdToken("mixed-" + Guid.NewGuid().ToString("N")), extra: [("audience", Issuer), ("audience", "api://orders")]);
        var exchanged = await JsonAsync(mixed);
        Assert.True(mixed.StatusCode == HttpStatusCode.OK, exchanged.ToString());
        var apiToken = exchanged.GetProperty("access_token").GetString()!;
        Assert.Equal(["api://orders"], new JsonWebToken(apiToken).Audiences);
        using (var refused = await SendAsync(HttpMethod.Get, "/sessions", apiToken))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        }

        var refreshToken = exchanged.GetProperty("refresh_token").GetString()!;
        using (var both = await Host.RefreshAsync(refreshToken, extra: [("audience", Issuer), ("audience", "api://orders")]))
        {
            await AssertOAuthErrorAsync(both, "invalid_target");
        }

        using (var notGranted = await Host.RefreshAsync(refreshToken, extra: [("audience", "api://billing")]))
        {
            await AssertOAuthErrorAsync(notGranted, "invalid_target");
        }

        // Neither refusal rotated anything: the same refresh token gets a token for the session endpoints.
        using var forSessions = await Host.RefreshAsync(refreshToken, extra: [("audience", Issuer)]);
        var refreshed = await JsonAsync(forSessions);
        Assert.True(forSessions.StatusCode == HttpStatusCode.OK, refreshed.ToString());
        var sessionsToken = refreshed.GetProperty("access_token").GetString()!;
        Assert.Equal([Issuer], new JsonWebToken(sessionsToken).Audiences);
        using var list = await SendAsync(HttpMethod.Get, "/sessions", sessionsToken);
        Assert.Equal(HttpStatusCode.OK, list.StatusCode);
        Assert.False(await Host.IsActiveAsync(sessionsToken)); // the API's introspection does not see it as its token
    }
}
