using Microsoft.Playwright;
using TokenService.BrowserTests.Infrastructure;

namespace TokenService.BrowserTests;

/// <summary>
/// The sessions page tells sessions apart (docs/api.md, "GET /sessions"), as the session lists of large identity providers do:
/// the application's display name, the browser and system each session was opened from, when it was opened and last
/// used, and its two deadlines labelled for what they are. Two browsers of one application used to show as two
/// identical rows. The pictures in docs/images come from here.
/// </summary>
[Collection(BrowserCollection.Name)]
public sealed class SessionsPageTests(BrowserFixture fixture)
{
    public const string FirefoxOnWindows = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0";
    public const string SafariOnIphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1";

    private SpaServers Servers => fixture.Servers;

    [BrowserFact]
    public async Task Two_browsers_of_one_application_are_told_apart_by_browser_and_system_and_the_two_deadlines_are_labelled()
    {
        const string user = "maria";
        await Servers.SignInElsewhereAsync(user);
        await using var phone = await fixture.NewContextAsync(SafariOnIphone);
        var onPhone = await SpaPage.OpenAsync(phone, Servers);
        var phoneSid = SpaPage.Sid(await onPhone.SignInAsync(user));
        await using var laptop = await fixture.NewContextAsync(FirefoxOnWindows);
        var onLaptop = await SpaPage.OpenAsync(laptop, Servers);
        var laptopSid = SpaPage.Sid(await onLaptop.SignInAsync(user));

        await onLaptop.OpenSessionsAsync(3);
        var page = onLaptop.Page;
        var laptopRow = page.Locator($"#session-rows tr[data-sid='{laptopSid}']");
        var phoneRow = page.Locator($"#session-rows tr[data-sid='{phoneSid}']");
        await Assertions.Expect(laptopRow.Locator("td.application")).ToContainTextAsync(SpaServers.SpaDisplayName);
        await Assertions.Expect(laptopRow.Locator("td.application .badge")).ToHaveTextAsync("this browser");
        await Assertions.Expect(laptopRow.Locator("td.device")).ToHaveTextAsync("Firefox on Windows");
        await Assertions.Expect(phoneRow.Locator("td.application")).ToHaveTextAsync(SpaServers.SpaDisplayName);
        await Assertions.Expect(phoneRow.Locator("td.device")).ToHaveTextAsync("Safari on iOS");
        // The other application signed in from a server that named no browser.
        var portalRow = page.Locator("#session-rows tr", new() { HasText = SpaServers.PortalDisplayName });
        await Assertions.Expect(portalRow.Locator("td.device")).ToHaveTextAsync("Unknown browser");

        var headers = await page.Locator("#sessions thead th").AllInnerTextsAsync();
        Assert.Equal(["Application", "Browser and system", "Signed in", "Last used", "Ends if unused until", "Ends at the latest"], headers.Take(6));

        // The idle deadline moves with use, the absolute one does not: renew on the laptop and list again.
        var idleBefore = await laptopRow.Locator("td.idle-expiry time").GetAttributeAsync("datetime");
        var absoluteBefore = await laptopRow.Locator("td.absolute-expiry time").GetAttributeAsync("datetime");
        Assert.True(DateTimeOffset.Parse(idleBefore!, System.Globalization.CultureInfo.InvariantCulture) < DateTimeOffset.Parse(absoluteBefore!, System.Globalization.CultureInfo.InvariantCulture));
        await page.ClickAsync("#nav-home");
        await onLaptop.RenewAsync();
        await onLaptop.OpenSessionsAsync(3);
        await Assertions.Expect(laptopRow.Locator("td.idle-expiry time")).Not.ToHaveAttributeAsync("datetime", idleBefore!);
        await Assertions.Expect(laptopRow.Locator("td.absolute-expiry time")).ToHaveAttributeAsync("datetime", absoluteBefore!);

        await ScreenshotAsync(page, "spa-sessions.png");

        // Ending the phone's session names it by application, browser and sign-in time, not by a client id.
        await phoneRow.Locator("button.end-session").ClickAsync();
        await Assertions.Expect(onLaptop.Message).ToHaveTextAsync(new System.Text.RegularExpressions.Regex(
            $"^The session of {SpaServers.SpaDisplayName} on Safari on iOS, signed in .+, has ended\\.$"));
        await onLaptop.SessionRowsAsync(2);
        await ScreenshotAsync(page, "spa-session-ended.png");
    }

    /// <summary>
    /// Names come from configuration and labels from what a client said about itself: the page puts them in as text,
    /// never as HTML. The sessions list is answered here by the test (Playwright's route) with markup in every field.
    /// </summary>
    [BrowserFact]
    public async Task Names_and_labels_are_shown_as_text_never_as_markup()
    {
        await using var context = await fixture.NewContextAsync();
        var spa = await SpaPage.OpenAsync(context, Servers);
        var sid = SpaPage.Sid(await spa.SignInAsync("zeynep"));
        const string name = "<img src=x id=injected-name>Orders";
        const string device = "<b id=injected-device>Evil</b> on Windows";
        var now = DateTimeOffset.UtcNow;
        var body = System.Text.Json.JsonSerializer.Serialize(new
        {
            sessions = new[]
            {
                new Dictionary<string, object>
                {
                    ["sid"] = sid, ["client_id"] = SpaServers.SpaClientId, ["client_name"] = name, ["device"] = device,
                    ["created_at"] = now, ["last_activity_at"] = now, ["expires_at"] = now.AddDays(1),
                    ["idle_expires_at"] = now.AddDays(1), ["absolute_expires_at"] = now.AddDays(7), ["current"] = true,
                },
            },
        });
        await spa.Page.RouteAsync(new Uri(Servers.TokenService, "/sessions").ToString(), route => route.FulfillAsync(new()
        {
            Status = 200,
            ContentType = "application/json",
            Headers = new Dictionary<string, string> { ["Access-Control-Allow-Origin"] = Servers.SpaOrigin },
            Body = body,
        }));

        await spa.OpenSessionsAsync(1);
        var row = spa.Page.Locator("#session-rows tr");
        await Assertions.Expect(row.Locator("td.application")).ToContainTextAsync(name);
        await Assertions.Expect(row.Locator("td.device")).ToHaveTextAsync(device);
        Assert.Equal(0, await spa.Page.Locator("#injected-name, #injected-device").CountAsync());
    }

    /// <summary>
    /// The page's picture for docs/images: written next to the test output, and into <c>SPA_SCREENSHOT_DIR</c> when set
    /// (<c>SPA_SCREENSHOT_DIR=$PWD/docs/images dotnet test tests/TokenService.BrowserTests --filter FullyQualifiedName~SessionsPageTests</c>).
    /// </summary>
    private static async Task ScreenshotAsync(IPage page, string name)
    {
        await page.SetViewportSizeAsync(1320, 480);
        var png = await page.ScreenshotAsync(new PageScreenshotOptions { FullPage = true });
        await File.WriteAllBytesAsync(Path.Combine(AppContext.BaseDirectory, name), png);
        if (Environment.GetEnvironmentVariable("SPA_SCREENSHOT_DIR") is { Length: > 0 } directory)
        {
            await File.WriteAllBytesAsync(Path.Combine(directory, name), png);
        }
    }
}
