using System.Net;
using TokenService.Tests.Infrastructure;
using static TokenService.Tests.Infrastructure.TokenServiceTestHost;

namespace TokenService.Tests.Http;

/// <summary>spa clients: refresh token only in the __Host- cookie, allowed origins only, CORS with credentials.</summary>
public sealed class SpaClientTests(HostFixture fixture) : SpaClientTests<HostFixture>(fixture);

/// <summary>The same tests against the Functions app (its HTTP functions invoked in-process).</summary>
public sealed class SpaClientTestsOnFunctions(FunctionsHostFixture fixture) : SpaClientTests<FunctionsHostFixture>(fixture);

/// <summary>The same tests against the published app under a real Functions host (<see cref="RealFunctionsHostPool"/>).</summary>
[RealFunctionsHostTier]
[Collection(RealFunctionsHostCollection.Name)]
public sealed class SpaClientTestsOnRealHost(RealFunctionsHostFixture fixture) : SpaClientTests<RealFunctionsHostFixture>(fixture);

public abstract class SpaClientTests<TFixture>(TFixture fixture) : IClassFixture<TFixture>
    where TFixture : HostFixture
{
    private TokenServiceTestHost Host => fixture.Host;

    private static string CookieFrom(HttpResponseMessage response) =>
        response.Headers.GetValues("Set-Cookie").Single(c => c.StartsWith("__Host-refresh_token=", StringComparison.Ordinal));

    private async Task<(HttpResponseMessage Response, string Cookie)> SpaLoginAsync(string subject, params (string Name, string Value)[] extra)
    {
        var response = await Host.ExchangeAsync(Host.Idp.IdToken(subject), "spa", null, extra);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return (response, CookieFrom(response).Split(';')[0]);
    }

    [Fact]
    public async Task A_spa_gets_the_refresh_token_only_as_a_host_prefixed_strict_cookie()
    {
        var (response, _) = await SpaLoginAsync("amy");
        using (response)
        {
            var json = await JsonAsync(response);
            Assert.False(json.TryGetProperty("refresh_token", out _));
            var cookie = CookieFrom(response).ToLowerInvariant();
            Assert.Contains("httponly", cookie, StringComparison.Ordinal);
            Assert.Contains("secure", cookie, StringComparison.Ordinal);
            Assert.Contains("samesite=strict", cookie, StringComparison.Ordinal);
            Assert.Contains("path=/", cookie, StringComparison.Ordinal);
            Assert.DoesNotContain("domain=", cookie, StringComparison.Ordinal);
            Assert.Equal(SpaOrigin, response.Headers.GetValues("Access-Control-Allow-Origin").Single());
            Assert.Equal("true", response.Headers.GetValues("Access-Control-Allow-Credentials").Single());
        }
    }

    [Fact]
    public async Task A_spa_refreshes_with_the_cookie_from_an_allowed_origin_and_gets_a_rotated_cookie()
    {
        var (login, cookie) = await SpaLoginAsync("ben");
        login.Dispose();
        using var refresh = await Host.PostFormAsync("/oauth2/token", [new("grant_type", "refresh_token"), new("client_id", "spa")], origin: SpaOrigin, cookie: cookie);
        Assert.Equal(HttpStatusCode.OK, refresh.StatusCode);
        var rotated = CookieFrom(refresh).Split(';')[0];
        Assert.NotEqual(cookie, rotated);
        Assert.False((await JsonAsync(refresh)).TryGetProperty("refresh_token", out _));

        using var reuse = await Host.PostFormAsync("/oauth2/token", [new("grant_type", "refresh_token"), new("client_id", "spa")], origin: SpaOrigin, cookie: cookie);
        await AssertOAuthErrorAsync(reuse, "invalid_grant");
    }

    [Fact]
    public async Task Spa_requests_without_an_allowed_origin_are_refused_and_get_no_cors_headers()
    {
        var (login, cookie) = await SpaLoginAsync("cal");
        login.Dispose();
        using var evil = await Host.PostFormAsync("/oauth2/token", [new("grant_type", "refresh_token"), new("client_id", "spa")], origin: "https://evil.example", cookie: cookie);
        await AssertOAuthErrorAsync(evil, "invalid_client", HttpStatusCode.Unauthorized);
        Assert.False(evil.Headers.Contains("Access-Control-Allow-Origin"));

        using var none = await Host.PostFormAsync("/oauth2/token", [new("grant_type", "refresh_token"), new("client_id", "spa")], cookie: cookie);
        await AssertOAuthErrorAsync(none, "invalid_client", HttpStatusCode.Unauthorized);
    }

    [Fact]
    public async Task A_spa_may_not_send_the_refresh_token_in_the_body()
    {
        var (login, cookie) = await SpaLoginAsync("dan");
        login.Dispose();
        var value = cookie["__Host-refresh_token=".Length..];
        using var response = await Host.PostFormAsync("/oauth2/token", [new("grant_type", "refresh_token"), new("client_id", "spa"), new("refresh_token", value)], origin: SpaOrigin);
        await AssertOAuthErrorAsync(response, "invalid_request");
    }

    [Fact]
    public async Task Preflight_answers_allowed_origins_only()
    {
        using var allowed = new HttpRequestMessage(HttpMethod.Options, "/oauth2/token");
        allowed.Headers.Add("Origin", SpaOrigin);
        allowed.Headers.Add("Access-Control-Request-Method", "POST");
        using var ok = await Host.Client.SendAsync(allowed);
        Assert.Equal(HttpStatusCode.NoContent, ok.StatusCode);
        Assert.Equal(SpaOrigin, ok.Headers.GetValues("Access-Control-Allow-Origin").Single());
        Assert.Equal("true", ok.Headers.GetValues("Access-Control-Allow-Credentials").Single());
        Assert.Contains("POST", ok.Headers.GetValues("Access-Control-Allow-Methods").Single(), StringComparison.Ordinal);

        using var denied = new HttpRequestMessage(HttpMethod.Options, "/oauth2/token");
        denied.Headers.Add("Origin", "https://evil.example");
        denied.Headers.Add("Access-Control-Request-Method", "POST");
        using var no = await Host.Client.SendAsync(denied);
        Assert.Equal(HttpStatusCode.Forbidden, no.StatusCode);
        Assert.False(no.Headers.Contains("Access-Control-Allow-Origin"));
    }

    [Theory]
    [InlineData("/sessions", "GET")]
    [InlineData("/sessions/revoke-others", "POST")]
    [InlineData("/sessions/some-session", "DELETE")]
    public async Task The_sessions_routes_answer_preflights_of_spa_origins_only(string path, string method)
    {
        using var allowed = new HttpRequestMessage(HttpMethod.Options, path);
        allowed.Headers.Add("Origin", SpaOrigin);
        allowed.Headers.Add("Access-Control-Request-Method", method);
        allowed.Headers.Add("Access-Control-Request-Headers", "authorization");
        using var ok = await Host.Client.SendAsync(allowed);
        Assert.Equal(HttpStatusCode.NoContent, ok.StatusCode);
        Assert.Equal(SpaOrigin, ok.Headers.GetValues("Access-Control-Allow-Origin").Single());
        Assert.Equal(method, ok.Headers.GetValues("Access-Control-Allow-Methods").Single());
        Assert.Contains("Authorization", ok.Headers.GetValues("Access-Control-Allow-Headers").Single(), StringComparison.Ordinal);

        using var denied = new HttpRequestMessage(HttpMethod.Options, path);
        denied.Headers.Add("Origin", "https://evil.example");
        denied.Headers.Add("Access-Control-Request-Method", method);
        using var no = await Host.Client.SendAsync(denied);
        Assert.Equal(HttpStatusCode.Forbidden, no.StatusCode);
        Assert.False(no.Headers.Contains("Access-Control-Allow-Origin"));
    }

    [Fact]
    public async Task The_sessions_routes_let_a_spa_origin_read_answers_but_only_the_bearer_token_authenticates()
    {
        var (login, cookie) = await SpaLoginAsync("fay", ("audience", Issuer)); // a token for the sessions routes
        var access = (await JsonAsync(login)).GetProperty("access_token").GetString()!;
        login.Dispose();

        async Task<HttpResponseMessage> ListAsync(string origin, string? token)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/sessions");
            request.Headers.Add("Origin", origin);
            request.Headers.Add("Cookie", cookie);
            if (token is not null)
            {
                request.Headers.Authorization = new("Bearer", token);
            }

            return await Host.Client.SendAsync(request);
        }

        using (var listed = await ListAsync(SpaOrigin, access))
        {
            Assert.Equal(HttpStatusCode.OK, listed.StatusCode);
            Assert.Equal(SpaOrigin, listed.Headers.GetValues("Access-Control-Allow-Origin").Single());
        }

        // The app can tell that its token is no longer good; the refresh cookie authenticates nobody here.
        using (var cookieOnly = await ListAsync(SpaOrigin, null))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, cookieOnly.StatusCode);
            Assert.Equal(SpaOrigin, cookieOnly.Headers.GetValues("Access-Control-Allow-Origin").Single());
        }

        using var evil = await ListAsync("https://evil.example", access);
        Assert.False(evil.Headers.Contains("Access-Control-Allow-Origin"));
    }

    [Fact]
    public async Task Logout_with_the_cookie_ends_the_session_and_clears_the_cookie()
    {
        var (login, cookie) = await SpaLoginAsync("eve");
        var access = (await JsonAsync(login)).GetProperty("access_token").GetString()!;
        login.Dispose();
        using var revoke = await Host.PostFormAsync("/oauth2/revoke", [new("client_id", "spa")], origin: SpaOrigin, cookie: cookie);
        Assert.Equal(HttpStatusCode.OK, revoke.StatusCode);
        Assert.Contains("max-age=0", CookieFrom(revoke).ToLowerInvariant(), StringComparison.Ordinal);
        Assert.False(await Host.IsActiveAsync(access));
        using var refresh = await Host.PostFormAsync("/oauth2/token", [new("grant_type", "refresh_token"), new("client_id", "spa")], origin: SpaOrigin, cookie: cookie);
        await AssertOAuthErrorAsync(refresh, "invalid_grant");
    }
}
