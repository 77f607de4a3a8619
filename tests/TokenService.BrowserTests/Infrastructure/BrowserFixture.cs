using Microsoft.Playwright;

namespace TokenService.BrowserTests.Infrastructure;

/// <summary>One Chromium and one set of servers for every browser test (starting a browser costs seconds).</summary>
[CollectionDefinition(Name)]
public sealed class BrowserCollection : ICollectionFixture<BrowserFixture>
{
    public const string Name = "browser";
}

/// <summary>
/// Debian's Chromium (<c>apt-get install chromium</c>), headless, driven by Playwright's own driver from its NuGet
/// package: nothing is downloaded. Each test opens its own browser contexts (separate cookie jars, like separate
/// browsers) and closes them.
/// </summary>
public sealed class BrowserFixture : IAsyncLifetime
{
    /// <summary>The binary itself: /usr/bin/chromium is Debian's wrapper script.</summary>
    public static readonly string ChromiumPath = Environment.GetEnvironmentVariable("CHROMIUM_PATH") is { Length: > 0 } path ? path : "/usr/lib/chromium/chromium";

    private IPlaywright? _playwright;

    public SpaServers Servers { get; private set; } = null!;
    public IBrowser Browser { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        if (!File.Exists(ChromiumPath))
        {
            // Every test is skipped (BrowserFact): start nothing.
            return;
        }

        // The suite shares two cores with the other test assemblies: allow slow answers, never wait on purpose.
        Assertions.SetDefaultExpectTimeout(15_000);
        Servers = await SpaServers.StartAsync();
        _playwright = await Playwright.CreateAsync();
        Browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = ChromiumPath,
            Headless = true,
        });
    }

    /// <summary>
    /// A fresh browser profile: its own cookies and storage, the SPA as base URL (or <paramref name="baseUrl"/>), a fixed
    /// locale and zone for stable text, and <paramref name="userAgent"/> when given (another browser, as the server sees it).
    /// </summary>
    public Task<IBrowserContext> NewContextAsync(string? userAgent = null, Uri? baseUrl = null) => Browser.NewContextAsync(new BrowserNewContextOptions
    {
        BaseURL = (baseUrl ?? Servers.Spa).ToString(),
        UserAgent = userAgent,
        Locale = "en-GB",
        TimezoneId = "UTC",
        ViewportSize = new ViewportSize { Width = 1100, Height = 720 },
    });

    public async Task DisposeAsync()
    {
        if (Browser is not null)
        {
            await Browser.CloseAsync();
        }

        _playwright?.Dispose();
        if (Servers is not null)
        {
            await Servers.DisposeAsync();
        }
    }
}
