using Microsoft.Playwright;
using TokenService.Tests.Infrastructure;

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
public class BrowserFixture : IAsyncLifetime
{
    /// <summary>The binary itself: /usr/bin/chromium is Debian's wrapper script.</summary>
    public static readonly string ChromiumPath = Environment.GetEnvironmentVariable("CHROMIUM_PATH") is { Length: > 0 } path ? path : "/usr/lib/chromium/chromium";

    private IPlaywright? _playwright;

    public SpaServers Servers { get; private set; } = null!;
    public IBrowser Browser { get; private set; } = null!;

    /// <summary>Whether this fixture's tests are all skipped (see <see cref="BrowserFactAttribute"/>): then it starts nothing.</summary>
    protected virtual bool Skipped => !File.Exists(ChromiumPath);

    public async Task InitializeAsync()
    {
        if (Skipped)
        {
            return;
        }

        // The suite shares two cores with the other test assemblies: allow slow answers, never wait on purpose.
        Assertions.SetDefaultExpectTimeout(15_000);
        Servers = await StartServersAsync();
        _playwright = await Playwright.CreateAsync();
        Browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = ChromiumPath,
            Headless = true,
        });
    }

    /// <summary>The servers of the tests: here with the standalone token service in-process.</summary>
    protected virtual Task<SpaServers> StartServersAsync() => SpaServers.StartAsync();

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

/// <summary>The browser tests whose token service is the Functions app under a real Functions host (one host for all).</summary>
[CollectionDefinition(Name)]
public sealed class FunctionsHostBrowserCollection : ICollectionFixture<FunctionsHostBrowserFixture>
{
    public const string Name = "browser, Functions host";
}

/// <summary>
/// <see cref="BrowserFixture"/> with the published Functions app under a real Functions host as the token service
/// (<see cref="SpaServers.StartOnFunctionsHostAsync"/>). Starts nothing where no host can run: its tests are then
/// skipped with the reason (<see cref="BrowserFactDiscoverer"/>).
/// </summary>
public sealed class FunctionsHostBrowserFixture : BrowserFixture
{
    protected override bool Skipped => base.Skipped || RealFunctionsHost.SkipReason is not null;

    protected override Task<SpaServers> StartServersAsync() => SpaServers.StartOnFunctionsHostAsync();
}
