namespace TokenService.Tests.Infrastructure;

/// <summary>One default host shared by the tests of a class.</summary>
public sealed class HostFixture : IAsyncLifetime
{
    public TokenServiceTestHost Host { get; private set; } = null!;

    public async Task InitializeAsync() => Host = await TokenServiceTestHost.StartAsync();

    public async Task DisposeAsync() => await Host.DisposeAsync();
}
