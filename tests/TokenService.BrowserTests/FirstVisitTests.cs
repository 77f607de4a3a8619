using Microsoft.Playwright;
using TokenService.BrowserTests.Infrastructure;

namespace TokenService.BrowserTests;

/// <summary>
/// A user's first visit to the SPA sample: a page opened as 127.0.0.1 (another site than
/// the token service on localhost, so the SameSite=Strict refresh cookie never travels) says at load to open it as
/// localhost instead of signing in and failing at the first renewal; a renewal without the cookie says so rather
/// than "signed out elsewhere"; and a signed-out load asks the token service nothing, so the console shows no 400.
/// </summary>
[Collection(BrowserCollection.Name)]
public sealed class FirstVisitTests(BrowserFixture fixture)
{
    private SpaServers Servers => fixture.Servers;

    [BrowserFact]
    public async Task A_page_opened_as_127_0_0_1_says_at_load_to_open_it_as_localhost_and_offers_no_sign_in()
    {
        var asLoopbackAddress = new UriBuilder(Servers.Spa) { Host = "127.0.0.1" }.Uri;
        await using var context = await fixture.NewContextAsync(baseUrl: asLoopbackAddress);
        var page = await context.NewPageAsync();
        var tokenServiceRequests = new List<string>();
        page.Request += (_, request) =>
        {
            if (request.Url.StartsWith(Servers.TokenService.ToString(), StringComparison.Ordinal))
            {
                tokenServiceRequests.Add(request.Url);
            }
        };

        await page.GotoAsync("/");
        await page.WaitForSelectorAsync("body[data-state='wrong-site']", new() { State = WaitForSelectorState.Attached });
        var message = page.Locator("#message");
        await Assertions.Expect(message).ToContainTextAsync($"Open {Servers.Spa} instead.");
        await Assertions.Expect(message).ToContainTextAsync("signed out at the first renewal");
        Assert.Equal("alert", await message.GetAttributeAsync("role"));
        Assert.Equal(Servers.Spa.ToString(), await page.Locator("#same-site-link").GetAttributeAsync("href"));
        Assert.False(await page.Locator("#sign-in-form").IsVisibleAsync());
        Assert.Empty(tokenServiceRequests);

        // The link leads to the same page on localhost, where signing in works.
        await page.ClickAsync("#same-site-link");
        var spa = new SpaPage(page, Servers);
        await spa.WaitForStateAsync("signed-out");
        Assert.StartsWith(Servers.Spa.ToString(), page.Url, StringComparison.Ordinal);
        await spa.SignInAsync("kofi");
    }

    [BrowserFact]
    public async Task A_renewal_the_browser_sent_no_cookie_with_says_so_and_not_that_the_session_ended_elsewhere()
    {
        await using var context = await fixture.NewContextAsync();
        var spa = await SpaPage.OpenAsync(context, Servers);
        await spa.SignInAsync("ines");

        // What a cross-site page or a browser blocking the cookie amounts to: the renewal arrives without it, and the
        // token service answers invalid_request "refresh_token is required".
        await context.ClearCookiesAsync();
        var renewal = spa.Page.WaitForResponseAsync(spa.IsTokenRequest);
        await spa.Page.ClickAsync("#renew");
        Assert.Equal(400, (await renewal).Status);
        await spa.WaitForStateAsync("signed-out");
        await Assertions.Expect(spa.Message).ToContainTextAsync("did not receive its sign-in cookie");
        await Assertions.Expect(spa.Message).Not.ToContainTextAsync("signed out elsewhere");
    }

    [BrowserFact]
    public async Task A_signed_out_load_asks_the_token_service_nothing_and_logs_no_error()
    {
        await using var context = await fixture.NewContextAsync();
        var page = await context.NewPageAsync();
        var errors = new List<string>();
        var tokenRequests = 0;
        page.Console += (_, message) =>
        {
            if (message.Type == "error")
            {
                errors.Add(message.Text);
            }
        };
        page.Request += (_, request) =>
        {
            if (request.Url == new Uri(Servers.TokenService, "/oauth2/token").ToString())
            {
                tokenRequests++;
            }
        };

        var spa = new SpaPage(page, Servers);
        await page.GotoAsync("/");
        await spa.WaitForStateAsync("signed-out");
        Assert.Equal(0, tokenRequests);

        // After a sign-in and a sign-out the next load is quiet too; the sign-in itself is the only token request.
        await spa.SignInAsync("olu");
        await page.ClickAsync("#sign-out");
        await spa.WaitForStateAsync("signed-out");
        await page.ReloadAsync();
        await spa.WaitForStateAsync("signed-out");
        Assert.Equal(1, tokenRequests);
        Assert.Empty(errors);
    }
}
