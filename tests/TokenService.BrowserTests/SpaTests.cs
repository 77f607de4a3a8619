using Microsoft.Playwright;
using TokenService.BrowserTests.Infrastructure;

namespace TokenService.BrowserTests;

/// <summary>
/// The SPA sample (samples/spa) in Chromium against the standalone token service, the sample API and the SPA's
/// static server: sign-in, the refresh cookie, renewal, other origins, "your sessions" and sign-out.
/// </summary>
[Collection(BrowserCollection.Name)]
public sealed class SpaTests(BrowserFixture fixture) : SpaTests<BrowserFixture>(fixture);

/// <summary>
/// The same tests with the published Functions app under a real Functions host as the SPA's token service
/// (<see cref="FunctionsHostBrowserFixture"/>): sign-in, renewal with the refresh cookie across origins (CORS),
/// sign-out, and the sessions page listing and ending sessions (its preflights go through the host's routing). The
/// tests that move the token service's clock or read the requests it logged need it in-process and are skipped here.
/// </summary>
[Collection(FunctionsHostBrowserCollection.Name)]
[OnFunctionsHost]
[NotOnFunctionsHost(nameof(SpaTests<FunctionsHostBrowserFixture>.The_access_token_is_renewed_silently_before_it_expires_and_again_when_the_api_refuses_it),
    "moves the token service's clock (SystemClockWithOffset), which only the in-process token service takes")]
[NotOnFunctionsHost(nameof(SpaTests<FunctionsHostBrowserFixture>.A_page_of_another_origin_can_neither_renew_the_session_nor_read_tokens),
    "reads what the token service saw of the blocked requests (RequestLog), which only the in-process token service records")]
public sealed class SpaTestsOnFunctionsHost(FunctionsHostBrowserFixture fixture) : SpaTests<FunctionsHostBrowserFixture>(fixture);

public abstract class SpaTests<TFixture>(TFixture fixture)
    where TFixture : BrowserFixture
{
    private const string SessionEnded = "Your session has ended";

    private SpaServers Servers => fixture.Servers;

    [BrowserFact]
    public async Task Signing_in_keeps_the_access_token_in_memory_and_the_refresh_token_in_an_HttpOnly_cookie_the_page_cannot_read()
    {
        await using var context = await fixture.NewContextAsync();
        var spa = await SpaPage.OpenAsync(context, Servers);
        Assert.Equal("signed-out", await spa.StateAsync());
        Assert.False(await spa.Message.IsVisibleAsync());

        var accessToken = await spa.SignInAsync("ada");
        var (status, text) = await spa.CallApiAsync();
        Assert.Equal(200, status);
        Assert.Contains("\"user\": \"ada\"", text, StringComparison.Ordinal);

        var cookie = await spa.RefreshCookieAsync();
        Assert.NotNull(cookie);
        Assert.True(cookie.HttpOnly);
        Assert.True(cookie.Secure);
        Assert.Equal(SameSiteAttribute.Strict, cookie.SameSite);
        Assert.Equal("/", cookie.Path);
        Assert.Equal("localhost", cookie.Domain); // host-only: the __Host- prefix forbids a Domain attribute

        // Cookies ignore ports, so the page (localhost, another port) would see a non-HttpOnly cookie of the token service.
        var documentCookie = await spa.Page.EvaluateAsync<string>("document.cookie");
        Assert.DoesNotContain("__Host-refresh_token", documentCookie, StringComparison.Ordinal);
        Assert.DoesNotContain(cookie.Value, documentCookie, StringComparison.Ordinal);

        // Neither token is in web storage or in the page.
        var storage = await spa.Page.EvaluateAsync<string>("JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage })");
        var html = await spa.Page.ContentAsync();
        foreach (var secret in new[] { accessToken, cookie.Value })
        {
            Assert.DoesNotContain(secret, storage, StringComparison.Ordinal);
            Assert.DoesNotContain(secret, html, StringComparison.Ordinal);
        }

        Assert.True(await Servers.IsActiveAsync(accessToken));
    }

    [BrowserFact]
    public async Task A_reload_loses_the_access_token_and_resumes_the_session_through_the_cookie()
    {
        await using var context = await fixture.NewContextAsync();
        var spa = await SpaPage.OpenAsync(context, Servers);
        var before = await spa.SignInAsync("grace");
        var cookie = (await spa.RefreshCookieAsync())!.Value;

        var renewal = spa.Page.WaitForResponseAsync(spa.IsTokenRequest);
        await spa.Page.ReloadAsync();
        var after = await spa.AccessTokenOfAsync(await renewal);
        await spa.WaitForStateAsync("signed-in");

        Assert.NotEqual(before, after);
        Assert.Equal(SpaPage.Sid(before), SpaPage.Sid(after)); // the same session, renewed
        Assert.NotEqual(cookie, (await spa.RefreshCookieAsync())!.Value); // rotated
        await Assertions.Expect(spa.Page.Locator("#user-name")).ToHaveTextAsync("grace");
        Assert.Equal(200, (await spa.CallApiAsync()).Status);
    }

    [BrowserFact]
    public async Task The_access_token_is_renewed_silently_before_it_expires_and_again_when_the_api_refuses_it()
    {
        await using var context = await fixture.NewContextAsync();
        // The page's timers run on Playwright's clock, moved by hand: no waiting, no timing assertion.
        await context.Clock.InstallAsync();
        var spa = await SpaPage.OpenAsync(context, Servers);
        var first = await spa.SignInAsync("lin");
        var firstCookie = (await spa.RefreshCookieAsync())!.Value;

        // 15-minute tokens are renewed 60 s before they expire: at 14:00. Both clocks move (the DPoP proof of the
        // renewal carries the page's time, which the token service checks against its own, RFC 9449 §4.3).
        // The servers' clock goes back at the end: the other tests' pages run on real time.
        Servers.Time.Advance(TimeSpan.FromMinutes(14.1));
        try
        {
            var renewed = await spa.RenewAsync(() => spa.Page.Clock.FastForwardAsync((long)TimeSpan.FromMinutes(14.1).TotalMilliseconds));
            Assert.NotEqual(first, renewed);
            Assert.Equal(SpaPage.Sid(first), SpaPage.Sid(renewed));
            Assert.NotEqual(firstCookie, (await spa.RefreshCookieAsync())!.Value);

            // The API refuses a token the page still holds for valid (here its jti was revoked at the token service; an
            // expiry the page's timers missed looks the same to it): the page renews once and calls again.
            await Servers.RevokeAccessTokenAsync(renewed);
            Assert.False(await Servers.IsActiveAsync(renewed));
            var apiCalls = new List<int>();
            var tokenCalls = 0;
            spa.Page.Response += (_, response) =>
            {
                if (response.Url == Servers.Api + "orders" && response.Request.Method == "GET")
                {
                    apiCalls.Add(response.Status);
                }
                else if (spa.IsTokenRequest(response))
                {
                    tokenCalls++;
                }
            };
            var (status, text) = await spa.CallApiAsync();
            Assert.Equal(200, status);
            Assert.Contains("\"user\": \"lin\"", text, StringComparison.Ordinal);
            Assert.Equal([401, 200], apiCalls);
            Assert.Equal(1, tokenCalls);
        }
        finally
        {
            Servers.Time.Advance(-TimeSpan.FromMinutes(14.1));
        }
    }

    [BrowserFact]
    public async Task A_page_of_another_origin_can_neither_renew_the_session_nor_read_tokens()
    {
        await using var context = await fixture.NewContextAsync();
        var spa = await SpaPage.OpenAsync(context, Servers);
        await spa.SignInAsync("victor");
        var cookie = (await spa.RefreshCookieAsync())!.Value;

        // Same site (localhost), other origin: the browser sends the SameSite=Strict cookie, and the token service
        // refuses the spa client from an origin it was not registered with, without CORS headers.
        var sameSite = await AttackFromAsync(context, Servers.OtherOrigin);
        Assert.Equal(2, sameSite.Renewals.Count);
        Assert.All(sameSite.Renewals, r => Assert.True(r.RefreshCookie));

        // Another site (127.0.0.1): the browser does not even send the cookie.
        var crossSite = await AttackFromAsync(context, Servers.OtherSite);
        Assert.Equal(2, crossSite.Renewals.Count);
        Assert.All(crossSite.Renewals, r => Assert.False(r.RefreshCookie));

        foreach (var attack in new[] { sameSite, crossSite })
        {
            Assert.All(attack.Renewals, r => Assert.Equal((401, (string?)null), (r.Status, r.AllowOrigin)));

            // The page's script learns nothing: every answer is withheld from it (a TypeError, not a response),
            // and a request it makes without CORS gets an opaque answer.
            Assert.Equal(["idToken", "refresh", "sessions"], attack.ScriptResults.Where(r => r.Value == "blocked: TypeError").Select(r => r.Key).Order());
            Assert.Equal("opaque 0", attack.ScriptResults["blind"]);
        }

        // The session is untouched: same cookie, and the SPA renews with it.
        Assert.Equal(cookie, (await spa.RefreshCookieAsync())!.Value);
        await spa.RenewAsync();
        await Assertions.Expect(spa.Message).ToHaveTextAsync("The access token was renewed.");
    }

    [BrowserFact]
    public async Task Ending_one_session_and_all_other_sessions_signs_the_other_browsers_out_with_a_clear_message()
    {
        const string user = "noor";
        await using var laptop = await fixture.NewContextAsync();
        await using var phone = await fixture.NewContextAsync();
        await using var kiosk = await fixture.NewContextAsync();
        var onLaptop = await SpaPage.OpenAsync(laptop, Servers);
        var onPhone = await SpaPage.OpenAsync(phone, Servers);
        var onKiosk = await SpaPage.OpenAsync(kiosk, Servers);
        var laptopToken = await onLaptop.SignInAsync(user);
        await onPhone.SignInAsync(user);
        var kioskToken = await onKiosk.SignInAsync(user);

        var rows = await onLaptop.OpenSessionsAsync(3);
        Assert.Equal(SpaPage.Sid(laptopToken), await rows[0].GetAttributeAsync("data-sid"));
        Assert.Equal("true", await rows[0].GetAttributeAsync("data-current"));

        // End the kiosk's session from the laptop.
        await onLaptop.Page.ClickAsync($"#session-rows tr[data-sid='{SpaPage.Sid(kioskToken)}'] button.end-session");
        await Assertions.Expect(onLaptop.Message).ToHaveTextAsync(new System.Text.RegularExpressions.Regex($"^The session of {SpaServers.SpaDisplayName} on Chrome on Linux, signed in .+, has ended\\.$"));
        await onLaptop.SessionRowsAsync(2);
        Assert.False(await Servers.IsActiveAsync(kioskToken));

        await onKiosk.Page.ClickAsync("#renew");
        await onKiosk.WaitForStateAsync("signed-out");
        await Assertions.Expect(onKiosk.Message).ToContainTextAsync(SessionEnded);
        Assert.Null(await onKiosk.RefreshCookieAsync());

        // "End all other sessions" (after a password change): the phone's session ends, the laptop's stays.
        await onLaptop.Page.ClickAsync("#revoke-others");
        await Assertions.Expect(onLaptop.Message).ToHaveTextAsync("1 other session has ended.");
        await onLaptop.SessionRowsAsync(1);

        // The phone learns it on its next call: its token is refused, renewal answers invalid_grant.
        await onPhone.Page.ClickAsync("#nav-sessions");
        await onPhone.WaitForStateAsync("signed-out");
        await Assertions.Expect(onPhone.Message).ToContainTextAsync(SessionEnded);
        Assert.Equal("alert", await onPhone.Message.GetAttributeAsync("role"));
        Assert.Null(await onPhone.RefreshCookieAsync());

        await onLaptop.Page.ClickAsync("#nav-home");
        Assert.Equal(200, (await onLaptop.CallApiAsync()).Status);
    }

    [BrowserFact]
    public async Task Signing_out_ends_the_session_and_clears_the_cookie()
    {
        await using var context = await fixture.NewContextAsync();
        var spa = await SpaPage.OpenAsync(context, Servers);
        var accessToken = await spa.SignInAsync("sam");

        var revoke = spa.Page.WaitForResponseAsync(r => r.Url == new Uri(Servers.TokenService, "/oauth2/revoke").ToString());
        await spa.Page.ClickAsync("#sign-out");
        Assert.Equal(200, (await revoke).Status);
        await spa.WaitForStateAsync("signed-out");
        await Assertions.Expect(spa.Message).ToHaveTextAsync("You are signed out.");
        Assert.Null(await spa.RefreshCookieAsync());
        Assert.False(await Servers.IsActiveAsync(accessToken));

        // A reload finds no session to resume, and says nothing about it.
        await spa.Page.ReloadAsync();
        await spa.WaitForStateAsync("signed-out");
        Assert.False(await spa.Message.IsVisibleAsync());
    }

    [BrowserFact]
    public async Task The_sessions_page_lists_each_session_with_its_application_and_when_it_was_created_and_last_used()
    {
        const string user = "alice";
        await Servers.SignInElsewhereAsync(user);
        await using var otherBrowser = await fixture.NewContextAsync();
        await (await SpaPage.OpenAsync(otherBrowser, Servers)).SignInAsync(user);
        await using var context = await fixture.NewContextAsync();
        var spa = await SpaPage.OpenAsync(context, Servers);
        await spa.SignInAsync(user);

        var rows = await spa.OpenSessionsAsync(3);
        var texts = await Task.WhenAll(rows.Select(r => r.InnerTextAsync()));
        Assert.Contains("this browser", texts[0], StringComparison.Ordinal);
        // The applications' display names (Clients:N:DisplayName), not their client ids.
        Assert.Single(texts, t => t.StartsWith(SpaServers.PortalDisplayName, StringComparison.Ordinal));
        Assert.Equal(2, texts.Count(t => t.StartsWith(SpaServers.SpaDisplayName, StringComparison.Ordinal)));
        Assert.DoesNotContain(texts, t => t.StartsWith(SpaServers.PortalClientId, StringComparison.Ordinal));
        // Signed in, last used, the idle deadline and the absolute one.
        Assert.All(await Task.WhenAll(rows.Select(r => r.Locator("time").CountAsync())), count => Assert.Equal(4, count));
        await Assertions.Expect(spa.Page.Locator("#revoke-others")).ToBeEnabledAsync();
    }

    private sealed record Attack(IReadOnlyList<LoggedRequest> Renewals, Dictionary<string, string> ScriptResults);

    /// <summary>
    /// From a page at <paramref name="origin"/> in the victim's browser: renew the spa client's session with the
    /// cookie, mint an ID token at the development IdP, and list the sessions, each with CORS; then send the
    /// renewal blind (<c>mode: "no-cors"</c>, as a cross-site form would). Returns what the page's script got and
    /// what the token service saw of the two renewals.
    /// </summary>
    private async Task<Attack> AttackFromAsync(IBrowserContext context, Uri origin)
    {
        var page = await context.NewPageAsync();
        await page.GotoAsync(origin.ToString());
        var seen = Servers.TokenServiceRequests.Requests.Count;
        var results = await page.EvaluateAsync<Dictionary<string, string>>(
            """
            async ({ tokenService, clientId }) => {
              const results = {};
              const attempt = async (name, url, init) => {
                try {
                  const response = await fetch(url, init);
                  results[name] = `read ${response.status}: ${await response.text()}`;
                } catch (error) {
                  results[name] = `blocked: ${error.name}`;
                }
              };
              const renewal = () => new URLSearchParams({ grant_type: "refresh_token", client_id: clientId });
              await attempt("refresh", `${tokenService}/oauth2/token`, { method: "POST", credentials: "include", body: renewal() });
              await attempt("idToken", `${tokenService}/dev-idp/id-token`, { method: "POST", body: new URLSearchParams({ sub: "victor" }) });
              await attempt("sessions", `${tokenService}/sessions`, { credentials: "include" });
              const opaque = await fetch(`${tokenService}/oauth2/token`, { method: "POST", credentials: "include", mode: "no-cors", body: renewal() });
              results.blind = `${opaque.type} ${opaque.status}`;
              return results;
            }
            """,
            new { tokenService = Servers.TokenService.ToString().TrimEnd('/'), clientId = SpaServers.SpaClientId });
        await page.CloseAsync();
        var renewals = await Servers.TokenServiceRequests.WaitForAsync(seen, r => r.Path == "/oauth2/token", count: 2);
        Assert.All(renewals, r => Assert.Equal(SpaServers.Origin(origin), r.Origin));
        return new Attack(renewals, results);
    }
}
