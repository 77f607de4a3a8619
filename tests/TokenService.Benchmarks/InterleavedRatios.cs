using System.Diagnostics;

namespace TokenService.Benchmarks;

/// <summary>
/// Ratios to the raw signature operation on a machine shared with other work, where BenchmarkDotNet's means swing by a
/// factor of several between runs: the operations run in alternating rounds within one process, and each one's fastest
/// round (the one least disturbed by neighbours) is compared, besides the medians.
/// <c>dotnet run -c Release --project tests/TokenService.Benchmarks -- interleaved</c>
/// </summary>
public static class InterleavedRatios
{
    public static async Task RunAsync()
    {
        foreach (var keys in new[] { 1, 3, 10 })
        {
            var v = new ValidationBenchmarks { KeysInJwks = keys };
            v.Setup();
            await MeasureAsync($"validation, {keys} key(s) in JWKS", [
                ("raw RS256 verify", () => { v.RawVerify(); return Task.CompletedTask; }),
                ("JsonWebTokenHandler alone", () => { v.HandlerOnly(); return Task.CompletedTask; }),
                ("core JwtValidator (precheck + handler)", () => { v.JwtValidatorWarm(); return Task.CompletedTask; }),
                ("JwtBearer alone (no session check)", v.BearerOnlyWarm),
                ("resource server: JwtBearer + session check", v.ResourceServerWarm),
            ]);
            v.Cleanup();
        }

        var kv = new KeyVaultSigningBenchmarks();
        kv.Setup();
        await MeasureAsync("access token assembly", [
            ("SHA-256 of the signing input", () => { kv.DigestOnly(); return Task.CompletedTask; }),
            ("access token beyond the signature", kv.TokenWithoutRoundTrip),
        ]);
    }

    private static async Task MeasureAsync(string label, (string Name, Func<Task> Op)[] ops, int rounds = 40, int perRound = 150)
    {
        var times = ops.Select(_ => new List<double>()).ToArray();
        for (var warmup = 0; warmup < 30; warmup++)
        {
            foreach (var (_, op) in ops)
            {
                for (var i = 0; i < perRound; i++)
                {
                    await op();
                }
            }
        }

        for (var round = 0; round < rounds; round++)
        {
            for (var k = 0; k < ops.Length; k++)
            {
                var watch = Stopwatch.StartNew();
                for (var i = 0; i < perRound; i++)
                {
                    await ops[k].Op();
                }

                times[k].Add(watch.Elapsed.TotalMicroseconds / perRound);
            }
        }

        var baseline = times[0].Order().ToList();
        for (var k = 0; k < ops.Length; k++)
        {
            // Bytes allocated per call, process-wide (the calls complete synchronously; nothing else runs here).
            var before = GC.GetTotalAllocatedBytes(precise: true);
            for (var i = 0; i < perRound; i++)
            {
                await ops[k].Op();
            }

            var allocated = (GC.GetTotalAllocatedBytes(precise: true) - before) / perRound;
            var sorted = times[k].Order().ToList();
            Console.WriteLine(FormattableString.Invariant(
                $"{label} | {ops[k].Name} | min {sorted[0]:F2} us | median {sorted[sorted.Count / 2]:F2} us | ratio (min) {sorted[0] / baseline[0]:F2} | ratio (median) {sorted[sorted.Count / 2] / baseline[baseline.Count / 2]:F2} | {allocated} B/call"));
        }
    }
}
