using System.Text.Json;
using Microsoft.Playwright;

namespace TokenService.BrowserTests.Infrastructure;

/// <summary>The SPA sample in one tab, driven through its own buttons; network answers are read only to check them.</summary>
public sealed class SpaPage(IPage page, SpaServers servers)
{
    public IPage Page { get; } = page;

    public ILocator Message => Page.Locator("#message");

    /// <summary>The session id of an access token (its <c>sid</c> claim), to tell sessions apart in the list.</summary>
    public static string Sid(string accessToken)
    {
        var payload = accessToken.Split('.')[1].Replace('-', '+').Replace('_', '/');
        payload = payload.PadRight(payload.Length + ((4 - (payload.Length % 4)) % 4), '=');
        using var json = JsonDocument.Parse(System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(payload)));
        return json.RootElement.GetProperty("sid").GetString()!;
    }

    public static async Task<SpaPage> OpenAsync(IBrowserContext context, SpaServers servers, string fragment = "")
    {
        var spa = new SpaPage(await context.NewPageAsync(), servers);
        await spa.Page.GotoAsync("/" + fragment);
        await spa.WaitForStateAsync("signed-in", "signed-out");
        return spa;
    }

    /// <summary>Waits until the app has settled in one of <paramref name="states"/> (body[data-state]).</summary>
    public Task WaitForStateAsync(params string[] states) =>
        Page.WaitForSelectorAsync(string.Join(", ", states.Select(s => $"body[data-state='{s}']")), new() { State = WaitForSelectorState.Attached });

    public Task<string?> StateAsync() => Page.Locator("body").GetAttributeAsync("data-state");

    public bool IsTokenRequest(IResponse response) => response.Url == new Uri(servers.TokenService, "/oauth2/token").ToString();

    /// <summary>Signs in through the development IdP and returns the access token of the token service's answer.</summary>
    public async Task<string> SignInAsync(string user)
    {
        await Page.FillAsync("#user", user);
        var response = await Page.RunAndWaitForResponseAsync(() => Page.ClickAsync("#sign-in"), IsTokenRequest);
        await WaitForStateAsync("signed-in");
        await Assertions.Expect(Page.Locator("#user-name")).ToHaveTextAsync(user);
        return await AccessTokenOfAsync(response);
    }

    /// <summary>Clicks a button that renews the token (or runs <paramref name="action"/>) and returns the renewed access token.</summary>
    public async Task<string> RenewAsync(Func<Task>? action = null)
    {
        var response = await Page.RunAndWaitForResponseAsync(action ?? (() => Page.ClickAsync("#renew")), IsTokenRequest);
        return await AccessTokenOfAsync(response);
    }

    public async Task<string> AccessTokenOfAsync(IResponse response)
    {
        var body = await response.TextAsync();
        Assert.True(response.Status == 200, $"token endpoint answered {response.Status}: {body}");
        using var json = JsonDocument.Parse(body);
        // A spa client never gets the refresh token in a body: only as the cookie.
        Assert.False(json.RootElement.TryGetProperty("refresh_token", out _));
        return json.RootElement.GetProperty("access_token").GetString()!;
    }

    /// <summary>Clicks "Call the API" and returns the status and body the page shows once the call (and any renewal) is done.</summary>
    public async Task<(int Status, string Text)> CallApiAsync()
    {
        await Page.EvaluateAsync("document.getElementById('api-result').removeAttribute('data-status')");
        await Page.ClickAsync("#call-api");
        var result = Page.Locator("#api-result[data-status]");
        await result.WaitForAsync();
        return (int.Parse(await result.GetAttributeAsync("data-status") ?? "0", System.Globalization.CultureInfo.InvariantCulture), await result.InnerTextAsync());
    }

    /// <summary>Opens "Your sessions" and waits for its rows.</summary>
    public async Task<IReadOnlyList<ILocator>> OpenSessionsAsync(int expected)
    {
        await Page.ClickAsync("#nav-sessions");
        return await SessionRowsAsync(expected);
    }

    public async Task<IReadOnlyList<ILocator>> SessionRowsAsync(int expected)
    {
        var rows = Page.Locator("#session-rows tr");
        await Assertions.Expect(rows).ToHaveCountAsync(expected);
        return await rows.AllAsync();
    }

    /// <summary>The refresh cookie as the browser holds it for the token service (HttpOnly cookies included), or null.</summary>
    public async Task<BrowserContextCookiesResult?> RefreshCookieAsync() =>
        (await Page.Context.CookiesAsync([servers.TokenService.ToString()])).SingleOrDefault(c => c.Name == "__Host-refresh_token");
}
