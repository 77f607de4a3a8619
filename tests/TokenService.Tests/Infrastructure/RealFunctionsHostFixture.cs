using System.Collections.Concurrent;
using System.Diagnostics;
using TokenService.Tests.Functions;
using TokenService.Tests.Tables;

namespace TokenService.Tests.Infrastructure;

/// <summary>
/// The real Functions host tier: the published app under a real Azure Functions host (<see cref="RealFunctionsHost"/>),
/// reached over HTTP only. A host takes 30-90 s to start on the shared 2-core machine, so every class of the tier is in
/// one collection whose pool starts its four hosts (one per configuration: default, DPoP nonces, IdP events, timers)
/// one after another as the collection starts, and stops them all when it ends.
/// <para>
/// Which suites run here: every suite that runs against both in-process hosts and reaches the host over HTTP only —
/// token exchange, refresh, revocation and introspection, session management, the SPA client, discovery, races, DPoP
/// at the token endpoint, with nonces and at /sessions, IdP events — each as a class derived for this tier, listing the
/// few tests it cannot run (<see cref="NotOnRealHostAttribute"/>, reported as skipped with the reason). Not
/// here: AuditTrailTests and TelemetryTests, which read the logs and spans the app writes in memory in the test's own
/// process; and the tests that move a fake clock, inject services or read the app's stores directly, which only an
/// in-process host allows. Without <c>func</c> or <c>../shared/functions-host/run.sh</c> every tier test is skipped,
/// each with the one-line reason.
/// </para>
/// </summary>
public sealed class RealFunctionsHostPool : IAsyncLifetime
{
    /// <summary>
    /// The default test configuration plus the DPoP tests' client "bound-web" and the Shared Signals transmitter with its
    /// second receiver (one host less to start each).
    /// </summary>
    public const string Default = "default";
    public const string DpopNonce = "dpop-nonce";
    public const string IdpEvents = "idp-events";
    public const string Timers = "timers";

    /// <summary>Every configuration of the tier: its settings on top of the defaults, given the host's test IdP.</summary>
    private static readonly Dictionary<string, Func<TestIdp, IDictionary<string, string?>?>> Configurations = new(StringComparer.Ordinal)
    {
        [Default] = _ => new Dpop.DpopHostFixture().HostSettings().Concat(SharedSignals.SharedSignalsHostFixture.Settings).ToDictionary(p => p.Key, p => p.Value),
        [DpopNonce] = _ => new Dpop.DpopNonceHostFixture().HostSettings(),
        [IdpEvents] = Events.IdpEventsTestsBase.Settings,
        [Timers] = _ => RealHostTriggerTests.TimerSettings,
    };

    // One start-up at a time: a host's start-up keeps a core busy for a minute or more (JIT of host and worker), and
    // two at once starved the other collections' fixtures on the shared 2-core machine (Azurite missing its 30 s).
    private readonly SemaphoreSlim _starting = new(1);
    private readonly ConcurrentDictionary<string, Lazy<Task<TokenServiceTestHost>>> _hosts = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, TimeSpan> _startTimes = new(StringComparer.Ordinal);
    private readonly Stopwatch _elapsed = new();

    public async Task InitializeAsync()
    {
        _elapsed.Start();
        if (RealFunctionsHost.SkipReason is not null)
        {
            return;
        }

        await new FunctionsAppOutput().InitializeAsync(); // the run folder every host copies

        // Every configuration starts now, in the background: the tier's classes run one after another, and none
        // should wait for a start-up that could have overlapped with the classes before it.
        foreach (var name in Configurations.Keys)
        {
            _ = GetAsync(name);
        }
    }

    /// <summary>
    /// The shared host of <paramref name="configuration"/>. A host that failed to start fails every class that asks
    /// for it with the same error (and the host's log), rather than being started again.
    /// </summary>
    public Task<TokenServiceTestHost> GetAsync(string configuration) =>
        _hosts.GetOrAdd(configuration, name => new Lazy<Task<TokenServiceTestHost>>(() => StartAsync(name))).Value;

    private async Task<TokenServiceTestHost> StartAsync(string configuration)
    {
        await _starting.WaitAsync();
        try
        {
            var started = Stopwatch.StartNew();
            var idp = new TestIdp();
            var host = await TokenServiceTestHost.StartRealFunctionsHostAsync(Configurations[configuration](idp), idp, shared: true);
            _startTimes[configuration] = started.Elapsed;
            return host;
        }
        finally
        {
            _starting.Release();
        }
    }

    public async Task DisposeAsync()
    {
        foreach (var host in _hosts.Values.Select(h => h.Value))
        {
            try
            {
                await (await host).DisposeSharedAsync();
            }
            catch (Exception) when (host.IsFaulted)
            {
                // it never started; its error was reported by the tests that asked for it
            }
        }

        // The tier's cost, for whoever keeps the suite's time in check: scripts/test.sh prints this file.
        var summary = $"real Functions host tier: {_hosts.Count} host(s) ({string.Join(", ", _startTimes.Select(t => $"{t.Key} started in {t.Value.TotalSeconds:F0} s"))}), {_elapsed.Elapsed.TotalSeconds:F0} s in all";
        var path = Path.Combine(AzuriteFixture.FindRepositoryRoot(), "artifacts", "real-functions-host-tier.txt");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        await File.WriteAllTextAsync(path, summary + Environment.NewLine);
        _starting.Dispose();
    }
}

[CollectionDefinition(Name)]
public sealed class RealFunctionsHostCollection : ICollectionFixture<RealFunctionsHostPool>
{
    public const string Name = "Real Functions host";
}

/// <summary>The default test configuration on the real Functions host (shared, see <see cref="RealFunctionsHostPool"/>).</summary>
public sealed class RealFunctionsHostFixture(RealFunctionsHostPool pool) : HostFixture
{
    protected override HostKind Kind => HostKind.RealFunctionsHost;

    protected override Task<TokenServiceTestHost> StartHostAsync() => pool.GetAsync(RealFunctionsHostPool.Default);
}
