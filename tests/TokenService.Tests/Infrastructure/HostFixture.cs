namespace TokenService.Tests.Infrastructure;

/// <summary>One default standalone host shared by the tests of a class.</summary>
public class HostFixture : IAsyncLifetime
{
    public TokenServiceTestHost Host { get; private set; } = null!;

    protected virtual HostKind Kind => HostKind.Standalone;

    public async Task InitializeAsync() => Host = await TokenServiceTestHost.StartAsync(Kind);

    public async Task DisposeAsync() => await Host.DisposeAsync();
}

/// <summary>
/// The same default configuration on the Functions app, its HTTP functions invoked in-process: a test class
/// derived for both fixtures proves that both hosts give the same answers to the same requests.
/// </summary>
public sealed class FunctionsHostFixture : HostFixture
{
    protected override HostKind Kind => HostKind.Functions;
}
