namespace TokenService.Tests.Infrastructure;

/// <summary>One default standalone host shared by the tests of a class.</summary>
public class HostFixture : IAsyncLifetime
{
    public TokenServiceTestHost Host { get; private set; } = null!;

    protected virtual HostKind Kind => HostKind.Standalone;

    public async Task InitializeAsync()
    {
        // A skipped real-host tier starts nothing: its tests are reported as skipped (RealFunctionsHostTestFramework).
        if (Kind != HostKind.RealFunctionsHost || RealFunctionsHost.SkipReason is null)
        {
            Host = await StartHostAsync();
        }
    }

    public virtual async Task DisposeAsync()
    {
        if (Host is not null)
        {
            await Host.DisposeAsync();
        }
    }

    protected virtual Task<TokenServiceTestHost> StartHostAsync() => TokenServiceTestHost.StartAsync(Kind);
}

/// <summary>
/// The same default configuration on the Functions app, its HTTP functions invoked in-process: a test class
/// derived for both fixtures proves that both hosts give the same answers to the same requests.
/// </summary>
public sealed class FunctionsHostFixture : HostFixture
{
    protected override HostKind Kind => HostKind.Functions;
}
