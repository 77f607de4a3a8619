using System.Collections.Concurrent;
using System.Diagnostics;
using TokenService.Tests.Functions;

namespace TokenService.Tests.Infrastructure;

/// <summary>
/// The real Functions host tier: the published app under a real Azure Functions host (<see cref="RealFunctionsHost"/>),
/// reached over HTTP only. A host takes 30-90 s to start on the shared 2-core machine, so every class of the tier is in
/// one collection whose pool starts one host per configuration ("default", "dpop", ...) the first time a class asks for
/// it and stops them all when the collection ends.
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
    private readonly ConcurrentDictionary<string, Lazy<Task<TokenServiceTestHost>>> _hosts = new(StringComparer.Ordinal);
    private readonly Stopwatch _elapsed = new();

    public async Task InitializeAsync()
    {
        _elapsed.Start();
        if (RealFunctionsHost.SkipReason is null)
        {
            await new FunctionsAppOutput().InitializeAsync(); // the run folder every host copies
        }
    }

    /// <summary>
    /// The shared host of <paramref name="configuration"/>, started on first use with the default test settings plus
    /// <paramref name="settings"/> (given the host's test IdP). A host that failed to start fails every class that asks
    /// for it with the same error (and the host's log), rather than being started again.
    /// </summary>
    public Task<TokenServiceTestHost> GetAsync(string configuration, Func<TestIdp, IDictionary<string, string?>>? settings = null) =>
        _hosts.GetOrAdd(configuration, _ => new Lazy<Task<TokenServiceTestHost>>(() =>
        {
            var idp = new TestIdp();
            return TokenServiceTestHost.StartRealFunctionsHostAsync(settings?.Invoke(idp), idp, shared: true);
        })).Value;

    public async Task DisposeAsync()
    {
        foreach (var host in _hosts.Values.Where(h => h.IsValueCreated))
        {
            try
            {
                await (await host.Value).DisposeSharedAsync();
            }
            catch (Exception) when (host.Value.IsFaulted)
            {
                // it never started; its error was reported by the tests that asked for it
            }
        }

        // The tier's cost, for whoever keeps the suite's time in check (shown with `dotnet test -v n` / in the TRX).
        Console.WriteLine($"Real Functions host tier: {_hosts.Count} host(s), {_elapsed.Elapsed.TotalSeconds:F0} s.");
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

    protected override Task<TokenServiceTestHost> StartHostAsync() => pool.GetAsync("default");
}
