namespace TokenService.BrowserTests.Infrastructure;

/// <summary>
/// A test that needs Debian's Chromium. scripts/test.sh installs it with apt-get; only where apt is unavailable
/// (a developer machine of another distribution) is the test skipped, with the reason, rather than failed. In a class
/// marked <see cref="OnFunctionsHostAttribute"/> it is skipped too where no Functions host can run
/// (<see cref="BrowserFactDiscoverer"/>).
/// </summary>
[Xunit.Sdk.XunitTestCaseDiscoverer("TokenService.BrowserTests.Infrastructure.BrowserFactDiscoverer", "TokenService.BrowserTests")]
public sealed class BrowserFactAttribute : FactAttribute
{
    public BrowserFactAttribute()
    {
        if (!File.Exists(BrowserFixture.ChromiumPath))
        {
            Skip = $"Chromium is not installed at {BrowserFixture.ChromiumPath} (apt-get install chromium).";
        }
    }
}
