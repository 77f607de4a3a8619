using TokenService.Tests.Infrastructure;

namespace TokenService.Tests.SharedSignals;

/// <summary>
/// The default test host with the Shared Signals transmitter enabled and a second receiver: resource server "api"
/// (api://orders, the default one) and "billing-api" (api://billing). The confidential client "web" may ask for either
/// audience, so a test picks which receivers may hear of a session by the audience it logs in for.
/// </summary>
public class SharedSignalsHostFixture : HostFixture
{
    public const string BillingApi = "billing-api";
    public const string BillingApiSecret = "billing-api-secret-123";

    /// <summary>The settings on top of the defaults (the real Functions host's default configuration includes them).</summary>
    public static Dictionary<string, string?> Settings { get; } = new()
    {
        ["SharedSignals:Enabled"] = "true",
        ["Clients:6:ClientId"] = BillingApi,
        ["Clients:6:Type"] = "resource_server",
        ["Clients:6:Secret"] = BillingApiSecret,
        ["Clients:6:AllowedAudiences:0"] = "api://billing",
    };

    protected override Task<TokenServiceTestHost> StartHostAsync() => TokenServiceTestHost.StartAsync(Kind, Settings);
}

public sealed class SharedSignalsFunctionsHostFixture : SharedSignalsHostFixture
{
    protected override HostKind Kind => HostKind.Functions;
}

/// <summary>The real Functions host's default configuration, which enables the transmitter (see <see cref="RealFunctionsHostPool"/>).</summary>
public sealed class SharedSignalsRealFunctionsHostFixture(RealFunctionsHostPool pool) : SharedSignalsHostFixture
{
    protected override HostKind Kind => HostKind.RealFunctionsHost;

    protected override Task<TokenServiceTestHost> StartHostAsync() => pool.GetAsync(RealFunctionsHostPool.Default);
}

/// <summary>
/// The same settings with <c>Storage__TableConnectionString</c> on an Azurite of its own (streams and outboxes in the
/// <c>ssfstreams</c> table), so the HTTP tests run against the Table stream store too.
/// </summary>
public sealed class SharedSignalsAzuriteHostFixture : SharedSignalsHostFixture
{
    private readonly Tables.AzuriteFixture _azurite = new();

    protected override async Task<TokenServiceTestHost> StartHostAsync()
    {
        await _azurite.InitializeAsync();
        return await TokenServiceTestHost.StartAsync(Kind, new Dictionary<string, string?>(Settings) { ["Storage:TableConnectionString"] = _azurite.ConnectionString });
    }

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        await _azurite.DisposeAsync();
    }
}
