using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using TokenService.Azure.KeyVault;
using TokenService.Azure.KeyVault.Keys;
using TokenService.Configuration;
using TokenService.Sessions;
using TokenService.Tests.KeyVault;
using TokenService.Tokens;

namespace TokenService.Benchmarks;

/// <summary>
/// Exchange and refresh latency when Key Vault is slow (docs/capacity.md): the issue and refresh core (in-memory
/// sessions, so the vault is the only dependency) signing with an in-process vault that answers each sign after an
/// injected latency, with an optional tail. Open-loop load at a fixed rate per operation, on the wall clock:
/// <c>dotnet run -c Release --project tests/TokenService.Benchmarks -- vault-latency --seconds 10 --rate 75</c>.
/// Reports p50/p99/max per operation, the most requests in flight at once (the instance's concurrency need: by
/// Little's law about rate × latency), and the vault calls per token (one sign, no key reads, once the key set is
/// loaded). A load run, not a unit test: figures go to docs/capacity.md.
/// </summary>
internal static class VaultLatency
{
    private sealed record Profile(string Name, TimeSpan Latency, double TailShare, TimeSpan Tail);

    public static async Task<int> RunAsync(string[] args)
    {
        var seconds = int.Parse(Option(args, "--seconds") ?? "10", CultureInfo.InvariantCulture);
        var rate = int.Parse(Option(args, "--rate") ?? "75", CultureInfo.InvariantCulture);
        Profile[] profiles =
        [
            new("none (loopback)", TimeSpan.Zero, 0, TimeSpan.Zero),
            new("5 ms", TimeSpan.FromMilliseconds(5), 0, TimeSpan.Zero),
            new("20 ms", TimeSpan.FromMilliseconds(20), 0, TimeSpan.Zero),
            new("50 ms", TimeSpan.FromMilliseconds(50), 0, TimeSpan.Zero),
            new("20 ms, 1 % at 500 ms", TimeSpan.FromMilliseconds(20), 0.01, TimeSpan.FromMilliseconds(500)),
            new("50 ms, 1 % at 500 ms", TimeSpan.FromMilliseconds(50), 0.01, TimeSpan.FromMilliseconds(500)),
            new("20 ms, 1 % at 15 s (past the budget)", TimeSpan.FromMilliseconds(20), 0.01, TimeSpan.FromSeconds(15)),
        ];

        Console.WriteLine($"{rate} exchanges/s and {rate} refreshes/s offered (open loop), {seconds} s measured after 2 s warm-up; budget 10 s");
        Console.WriteLine("| vault latency per sign | exchange p50 / p99 / max ms | refresh p50 / p99 / max ms | most in flight | failed | vault calls per token |");
        Console.WriteLine("|---|---:|---:|---:|---:|---|");
        foreach (var profile in profiles)
        {
            await RunOnceAsync(profile, rate, seconds);
        }

        return 0;
    }

    private static async Task RunOnceAsync(Profile profile, int rate, int seconds)
    {
        await using var server = await FakeKeyVaultServer.StartAsync();
        var clientOptions = new KeyClientOptions { Transport = FakeKeyVaultServer.Transport };
        var keysOptions = new KeysOptions { KeyName = "signing" };
        using var vault = new KeyVaultSigningKeyService(
            new KeyClient(server.VaultUri, new RecordingCredential(), clientOptions), keysOptions,
            new KeyVaultPlacement(0, 1, keysOptions.SignsPerWindow, TimeSpan.FromSeconds(10)), TimeProvider.System,
            NullLogger<KeyVaultSigningKeyService>.Instance);
        var options = Options.Create(new TokenServiceOptions { Issuer = "https://tokens.bench.example", MaxSessionsPerUser = 3 });
        var sessions = new SessionService(new InMemorySessionStore(), options, TimeProvider.System, NullLogger<SessionService>.Instance, BenchmarkMetrics.Create());
        var issuer = new AccessTokenIssuer(vault, options, TimeProvider.System);
        ValueTask<IssuedAccessToken> Issue(SessionRecord session, string scope, CancellationToken ct) => issuer.IssueAsync(session, scope, ct);

        var user = 0;
        OpenSessionRequest NextUser() => new("u" + Interlocked.Increment(ref user), "s" + user, "web", "orders.read", ["api://orders"], DateTimeOffset.UtcNow, null, ["pwd"]);

        // Refresh tokens to rotate: enough that each is used about once a second, far more than are ever in flight.
        await vault.GetKeySetAsync(CancellationToken.None);
        var refreshTokens = new ConcurrentQueue<string>();
        await Parallel.ForAsync(0, rate * 2, new ParallelOptions { MaxDegreeOfParallelism = 32 }, async (_, ct) =>
            refreshTokens.Enqueue((await sessions.OpenAsync(NextUser(), Issue, ct)).RefreshToken));

        var random = new Random(27);
        server.SignLatency = () =>
        {
            lock (random)
            {
                return profile.TailShare > 0 && random.NextDouble() < profile.TailShare ? profile.Tail : profile.Latency;
            }
        };

        var exchange = new ConcurrentBag<double>();
        var refresh = new ConcurrentBag<double>();
        var inFlight = 0;
        var mostInFlight = 0;
        var failed = 0;
        var tokens = 0;
        var clock = Stopwatch.StartNew();
        var warmUp = TimeSpan.FromSeconds(2);
        var end = warmUp + TimeSpan.FromSeconds(seconds);
        var (signsAtStart, readsAtStart) = (0, 0);
        var running = new List<Task>();

        async Task Run(bool isExchange, bool measured)
        {
            var now = Interlocked.Increment(ref inFlight);
            if (measured)
            {
                InterlockedMax(ref mostInFlight, now);
            }

            var start = clock.Elapsed;
            try
            {
                using var budget = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                if (isExchange)
                {
                    await sessions.OpenAsync(NextUser(), Issue, budget.Token);
                }
                else if (refreshTokens.TryDequeue(out var token))
                {
                    var outcome = await sessions.RefreshAsync(token, "web", null, null, Issue, budget.Token);
                    refreshTokens.Enqueue(outcome.RefreshToken ?? throw new InvalidOperationException(outcome.Description));
                }

                if (measured)
                {
                    Interlocked.Increment(ref tokens);
                    (isExchange ? exchange : refresh).Add((clock.Elapsed - start).TotalMilliseconds);
                }
            }
            catch (Exception ex) when (ex is DependencyUnavailableException or OperationCanceledException or InvalidOperationException)
            {
                Interlocked.Increment(ref failed);
            }
            finally
            {
                Interlocked.Decrement(ref inFlight);
            }
        }

        // Open loop: requests start on schedule whether or not earlier ones have finished, as independent clients do.
        using var ticker = new PeriodicTimer(TimeSpan.FromMilliseconds(10));
        var started = 0L;
        var measuring = false;
        while (clock.Elapsed < end && await ticker.WaitForNextTickAsync())
        {
            if (!measuring && clock.Elapsed >= warmUp)
            {
                measuring = true;
                (signsAtStart, readsAtStart) = (server.Count("sign"), server.Count("get") + server.Count("list"));
            }

            var due = (long)(clock.Elapsed.TotalSeconds * rate);
            for (; started < due; started++)
            {
                running.Add(Run(isExchange: true, measuring));
                running.Add(Run(isExchange: false, measuring));
            }
        }

        await Task.WhenAll(running);
        var signs = server.Count("sign") - signsAtStart;
        var reads = server.Count("get") + server.Count("list") - readsAtStart;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| {profile.Name} | {Summary(exchange)} | {Summary(refresh)} | {mostInFlight} | {failed} | {(double)signs / Math.Max(1, tokens):0.00} signs, {reads} key reads |"));
    }

    private static string Summary(ConcurrentBag<double> latencies)
    {
        var sorted = latencies.Order().ToList();
        double Percentile(double p) => sorted.Count == 0 ? 0 : sorted[(int)Math.Min(sorted.Count - 1, Math.Floor(p * sorted.Count))];
        return string.Create(CultureInfo.InvariantCulture, $"{Percentile(0.5):0.0} / {Percentile(0.99):0.0} / {(sorted.Count == 0 ? 0 : sorted[^1]):0}");
    }

    private static void InterlockedMax(ref int target, int value)
    {
        for (var current = Volatile.Read(ref target); value > current; current = Volatile.Read(ref target))
        {
            if (Interlocked.CompareExchange(ref target, value, current) == current)
            {
                return;
            }
        }
    }

    private static string? Option(string[] args, string name)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }
}
