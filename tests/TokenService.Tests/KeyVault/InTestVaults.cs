using System.Diagnostics;
using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using TokenService.Azure.KeyVault;
using TokenService.Azure.KeyVault.Keys;
using TokenService.Configuration;
using TokenService.Keys;

namespace TokenService.Tests.KeyVault;

/// <summary>
/// Several in-test Key Vaults on one <see cref="FakeTimeProvider"/>, and signing services over them (one per "instance"
/// of the token service), for the throttling, failover and multi-vault rotation tests.
/// </summary>
public sealed class InTestVaults : IAsyncDisposable
{
    public static readonly DateTimeOffset Start = new(2026, 3, 1, 0, 0, 0, TimeSpan.Zero);

    private readonly List<IDisposable> _services = [];

    private InTestVaults(FakeTimeProvider time, IReadOnlyList<FakeKeyVaultServer> servers, KeysOptions options)
    {
        Time = time;
        Servers = servers;
        Options = options;
    }

    public FakeTimeProvider Time { get; }
    public IReadOnlyList<FakeKeyVaultServer> Servers { get; }
    public KeysOptions Options { get; }

    /// <summary>
    /// The limiters' release jitter: zero (release at the segment's start) for tests that time single requests to the
    /// tick, null for the product's default (a random part of half a segment), which the scale-out simulation uses.
    /// </summary>
    public TimeSpan? ReleaseJitter { get; set; } = TimeSpan.Zero;

    private KeyVaultSigningKeyService WithJitter(KeyVaultSigningKeyService service)
    {
        if (ReleaseJitter is { } jitter)
        {
            service.Throttle.ReleaseJitter = jitter;
        }

        return service;
    }

    public static async Task<InTestVaults> StartAsync(int count, Action<KeysOptions>? configure = null)
    {
        var time = new FakeTimeProvider(Start);
        var servers = new List<FakeKeyVaultServer>();
        for (var i = 0; i < count; i++)
        {
            var server = await FakeKeyVaultServer.StartAsync();
            server.Clock = time;
            servers.Add(server);
        }

        var options = new KeysOptions { KeyName = "signing", Algorithm = "ES256" };
        foreach (var server in servers)
        {
            options.Vaults.Add(new KeyVaultEndpointOptions { Uri = server.VaultUri.AbsoluteUri });
        }

        configure?.Invoke(options);
        return new InTestVaults(time, servers, options);
    }

    public static KeyClient Client(Uri vault)
    {
        var options = new KeyClientOptions { Transport = FakeKeyVaultServer.Transport };
        options.Retry.MaxRetries = 0; // what happens on 429 and 5xx is the throttle's and the router's to decide
        return new KeyClient(vault, new RecordingCredential(), options);
    }

    /// <summary>Vault <paramref name="index"/> alone, as an instance configured with only it would sign.</summary>
    public KeyVaultSigningKeyService Vault(int index, TimeSpan? budget = null)
    {
        var service = WithJitter(new KeyVaultSigningKeyService(
            Client(Servers[index].VaultUri), Options, new KeyVaultPlacement(index, Servers.Count, Options.SignsPerWindow, budget ?? TimeSpan.FromSeconds(10)),
            Time, NullLogger<KeyVaultSigningKeyService>.Instance));
        _services.Add(service);
        return service;
    }

    /// <summary>One token-service instance signing with every vault.</summary>
    public MultiVaultSigningKeyService Instance(TimeSpan? budget = null)
    {
        var service = new MultiVaultSigningKeyService(
            [.. Servers.Select((_, i) => WithJitter(new KeyVaultSigningKeyService(
                Client(Servers[i].VaultUri), Options, new KeyVaultPlacement(i, Servers.Count, Options.SignsPerWindow, budget ?? TimeSpan.FromSeconds(10)),
                Time, NullLogger<KeyVaultSigningKeyService>.Instance)))],
            NullLogger<MultiVaultSigningKeyService>.Instance);
        _services.Add(service);
        return service;
    }

    public static ReadOnlyMemory<byte> Input(SigningKey key) =>
        Encoding.ASCII.GetBytes("eyJhbGciOiJFUzI1NiIsImtpZCI6IiIsInR5cCI6ImF0K2p3dCJ9." + key.Kid);

    /// <summary>
    /// Waits (wall clock, the fake clock standing still) until <paramref name="settled"/> holds three polls in a row:
    /// requests granted a permit have reached the in-test vault and come back, so the next step of the fake clock
    /// finds them done. Pacing is the fake clock's; this only lets real I/O finish.
    /// </summary>
    public static async Task SettleAsync(Func<bool> settled)
    {
        var watch = Stopwatch.StartNew();
        var stable = 0;
        while (stable < 3)
        {
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(30), "requests did not settle");
            await Task.Delay(5);
            stable = settled() ? stable + 1 : 0;
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var service in _services)
        {
            service.Dispose();
        }

        foreach (var server in Servers)
        {
            await server.DisposeAsync();
        }
    }
}
