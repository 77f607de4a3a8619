using System.Diagnostics;
using System.Globalization;
using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using TokenService.Azure.KeyVault;
using TokenService.Azure.KeyVault.Keys;
using TokenService.Configuration;
using TokenService.Keys;
using TokenService.Tests.KeyVault;

namespace TokenService.Benchmarks;

/// <summary>
/// Sustained signing throughput against in-process vaults that throttle like Key Vault (N signs per second, 429
/// <c>Throttled</c> without Retry-After beyond it), for one vault and for several, through the same services the
/// host uses (per-vault limiter, shared 429 backoff, least-loaded choice with failover):
/// <c>dotnet run -c Release --project tests/TokenService.Benchmarks -- vaults --vaults 1,3 --limit 200 --seconds 20 --concurrency 64</c>.
/// A load run on the wall clock, not a unit test: figures go to docs/performance.md.
/// </summary>
internal static class VaultThroughput
{
    public static async Task<int> RunAsync(string[] args)
    {
        var counts = (Option(args, "--vaults") ?? "1,3").Split(',').Select(v => int.Parse(v, CultureInfo.InvariantCulture)).ToList();
        var limit = int.Parse(Option(args, "--limit") ?? "200", CultureInfo.InvariantCulture);
        var clientLimit = int.Parse(Option(args, "--client-limit") ?? limit.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
        var seconds = int.Parse(Option(args, "--seconds") ?? "20", CultureInfo.InvariantCulture);
        var concurrency = int.Parse(Option(args, "--concurrency") ?? "64", CultureInfo.InvariantCulture);
        Console.WriteLine($"vault limit {limit}/s, client limit {clientLimit}/s per vault, {concurrency} concurrent signers, {seconds} s measured after 3 s warm-up");
        Console.WriteLine("| vaults | signs/s | per vault | 429s from the vaults | failed requests | p50 ms | p99 ms |");
        Console.WriteLine("|---:|---:|---:|---:|---:|---:|---:|");
        double? single = null;
        foreach (var count in counts)
        {
            var result = await RunOnceAsync(count, limit, clientLimit, seconds, concurrency);
            single ??= count == 1 ? result.PerSecond : null;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {count} | {result.PerSecond:0.0} | {result.PerSecond / count:0.0} | {result.Throttled} | {result.Failed} | {result.P50:0.0} | {result.P99:0.0} |"));
        }

        return 0;
    }

    private sealed record Result(double PerSecond, int Throttled, int Failed, double P50, double P99);

    private static async Task<Result> RunOnceAsync(int count, int limit, int clientLimit, int seconds, int concurrency)
    {
        var servers = new List<FakeKeyVaultServer>();
        for (var i = 0; i < count; i++)
        {
            servers.Add(await FakeKeyVaultServer.StartAsync());
        }

        try
        {
            var options = new KeysOptions { KeyName = "signing", Algorithm = "ES256", SignsPerWindow = clientLimit, SignWindow = TimeSpan.FromSeconds(1) };
            var vaults = servers.Select((s, i) =>
            {
                var clientOptions = new KeyClientOptions { Transport = FakeKeyVaultServer.Transport };
                clientOptions.Retry.MaxRetries = 0;
                return new KeyVaultSigningKeyService(
                    new KeyClient(s.VaultUri, new RecordingCredential(), clientOptions), options,
                    new KeyVaultPlacement(i, count, clientLimit, TimeSpan.FromSeconds(10)), TimeProvider.System, NullLogger<KeyVaultSigningKeyService>.Instance);
            }).ToList();
            using var signer = new MultiVaultSigningKeyService(vaults, NullLogger<MultiVaultSigningKeyService>.Instance);
            await signer.GetKeySetAsync(CancellationToken.None); // every vault's first key, before the vaults count
            foreach (var server in servers)
            {
                server.Throttle(limit, TimeSpan.FromSeconds(1));
            }

            var payload = Encoding.ASCII.GetBytes(".eyJzdWIiOiJsb2FkIn0");
            ReadOnlyMemory<byte> Input(SigningKey key) => Encoding.ASCII.GetBytes(key.Kid).Concat(payload).ToArray();
            var warmUp = TimeSpan.FromSeconds(3);
            var clock = Stopwatch.StartNew();
            var end = warmUp + TimeSpan.FromSeconds(seconds);
            var ok = 0;
            var failed = 0;
            var latencies = new List<double>[concurrency];
            await Parallel.ForAsync(0, concurrency, new ParallelOptions { MaxDegreeOfParallelism = concurrency }, async (worker, _) =>
            {
                latencies[worker] = [];
                while (clock.Elapsed < end)
                {
                    var start = clock.Elapsed;
                    using var budget = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                    var success = true;
                    try
                    {
                        await signer.SignWithActiveKeyAsync(Input, budget.Token);
                    }
                    catch (Exception ex) when (ex is DependencyUnavailableException or OperationCanceledException)
                    {
                        success = false;
                    }

                    if (start >= warmUp && clock.Elapsed <= end)
                    {
                        if (success)
                        {
                            Interlocked.Increment(ref ok);
                            latencies[worker].Add((clock.Elapsed - start).TotalMilliseconds);
                        }
                        else
                        {
                            Interlocked.Increment(ref failed);
                        }
                    }
                }
            });

            var sorted = latencies.SelectMany(l => l).Order().ToList();
            double Percentile(double p) => sorted.Count == 0 ? 0 : sorted[(int)Math.Min(sorted.Count - 1, Math.Floor(p * sorted.Count))];
            return new Result(ok / (double)seconds, servers.Sum(s => s.Count("throttled")), failed, Percentile(0.5), Percentile(0.99));
        }
        finally
        {
            foreach (var server in servers)
            {
                await server.DisposeAsync();
            }
        }
    }

    private static string? Option(string[] args, string name)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }
}
