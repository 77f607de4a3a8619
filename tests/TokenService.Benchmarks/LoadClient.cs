using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace TokenService.Benchmarks;

/// <summary>
/// A bounded load client for the standalone host on embedded defaults (development IdP and clients):
/// <c>dotnet run -c Release --project tests/TokenService.Benchmarks -- load --url http://127.0.0.1:7071 --requests 1000 --concurrency 8</c>.
/// Measures token exchange (issue) and refresh: p50, p99 and throughput. Loopback only; stops by itself.
/// <c>--introspect</c> adds a pass of introspections (the <c>dev-api</c> resource server) of the refreshed access
/// tokens; <c>--cpu host=PID,azurite=PID</c> adds, per pass, the CPU time each named process used during that pass
/// alone, per request (from <c>/proc/PID/stat</c>: the ID tokens minted before the passes are not counted).
/// <c>--phase-times</c> writes each pass's start and end (CLOCK_MONOTONIC ns, as <c>perf record -k mono</c> stamps
/// samples) to stderr, so that a profile of the host can be split by request kind. <c>--refresh-passes N</c> refreshes
/// each session N times in a row (each pass presents the refresh token the pass before was given), measured as one
/// refresh row: a steady-state refresh figure without a token exchange between the refreshes. <c>--users N</c> signs in
/// returning users of a pool of N (subjects <c>load-pool-0</c> … shared by every run, or <c>PREFIX-0</c> … with
/// <c>--pool PREFIX</c>) instead of a new user per exchange, so that a table's user rows stop growing from pass to pass
/// (the host needs <c>MaxSessionsPerUser</c> above the sign-ins each user gets, or the per-user limit's eviction path is
/// measured instead).
/// </summary>
internal static class LoadClient
{
    public static async Task<int> RunAsync(string[] args)
    {
        var url = Option(args, "--url") ?? "http://127.0.0.1:7071";
        var requests = int.Parse(Option(args, "--requests") ?? "1000", CultureInfo.InvariantCulture);
        var concurrency = int.Parse(Option(args, "--concurrency") ?? "8", CultureInfo.InvariantCulture);
        var label = Option(args, "--label") ?? url;
        var introspect = args.Contains("--introspect");
        var refreshPasses = int.Parse(Option(args, "--refresh-passes") ?? "1", CultureInfo.InvariantCulture);
        var users = Option(args, "--users") is { } pool ? int.Parse(pool, CultureInfo.InvariantCulture) : (int?)null;
        var poolPrefix = Option(args, "--pool") ?? "load-pool";
        var cpu = ProcessCpu.Parse(Option(args, "--cpu"));
        s_phaseTimes = args.Contains("--phase-times");
        if (!new Uri(url).IsLoopback)
        {
            Console.Error.WriteLine("The load client only targets loopback addresses.");
            return 2;
        }

        using var http = new HttpClient { BaseAddress = new Uri(url), Timeout = TimeSpan.FromSeconds(30) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes("dev-confidential:dev-confidential-secret")));

        // ID tokens are minted up front so that only the token service is measured.
        var run = Guid.NewGuid().ToString("N")[..8];
        var idTokens = new string[requests];
        await Parallel.ForAsync(0, requests, new ParallelOptions { MaxDegreeOfParallelism = concurrency }, async (i, ct) =>
        {
            using var response = await http.PostAsync("/dev-idp/id-token", new FormUrlEncodedContent([new("sub", users is { } n ? $"{poolPrefix}-{i % n}" : $"load-{run}-{i}")]), ct);
            idTokens[i] = JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct)).RootElement.GetProperty("id_token").GetString()!;
        });

        var refreshTokens = new string[requests];
        var issue = await MeasureAsync("issue", requests, concurrency, cpu, async i =>
        {
            using var response = await http.PostAsync("/oauth2/token", new FormUrlEncodedContent(
            [
                new("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
                new("subject_token", idTokens[i]),
                new("subject_token_type", "urn:ietf:params:oauth:token-type:id_token"),
            ]));
            var body = await response.Content.ReadAsStringAsync();
            refreshTokens[i] = response.IsSuccessStatusCode ? JsonDocument.Parse(body).RootElement.GetProperty("refresh_token").GetString()! : throw new InvalidOperationException(body);
        });

        var accessTokens = new string[requests];
        var refresh = await MeasureAsync("refresh", requests * refreshPasses, concurrency, cpu, async n =>
        {
            // Pass by pass: request n refreshes session n % requests, whose previous rotation finished a pass earlier.
            var i = n % requests;
            using var response = await http.PostAsync("/oauth2/token", new FormUrlEncodedContent([new("grant_type", "refresh_token"), new("refresh_token", refreshTokens[i])]));
            var body = await response.Content.ReadAsStringAsync();
            if (!response.IsSuccessStatusCode)
            {
                throw new InvalidOperationException(body);
            }

            var root = JsonDocument.Parse(body).RootElement;
            accessTokens[i] = root.GetProperty("access_token").GetString()!;
            refreshTokens[i] = root.GetProperty("refresh_token").GetString()!;
        }, passLength: requests);

        Console.WriteLine($"| {label} | issue | {requests} | {concurrency} | {issue.P50:F2} | {issue.P99:F2} | {issue.Throughput:F0} |{issue.Cpu}");
        Console.WriteLine($"| {label} | refresh | {requests * refreshPasses} | {concurrency} | {refresh.P50:F2} | {refresh.P99:F2} | {refresh.Throughput:F0} |{refresh.Cpu}");
        if (introspect)
        {
            var resourceServer = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes("dev-api:dev-api-secret")));
            var introspection = await MeasureAsync("introspection", requests, concurrency, cpu, async i =>
            {
                using var request = new HttpRequestMessage(HttpMethod.Post, "/oauth2/introspect") { Content = new FormUrlEncodedContent([new("token", accessTokens[i])]) };
                request.Headers.Authorization = resourceServer;
                using var response = await http.SendAsync(request);
                var body = await response.Content.ReadAsStringAsync();
                if (!response.IsSuccessStatusCode || !JsonDocument.Parse(body).RootElement.GetProperty("active").GetBoolean())
                {
                    throw new InvalidOperationException(body);
                }
            });
            Console.WriteLine($"| {label} | introspection | {requests} | {concurrency} | {introspection.P50:F2} | {introspection.P99:F2} | {introspection.Throughput:F0} |{introspection.Cpu}");
        }

        return 0;
    }

    /// <summary>Cpu: one " name ms/req |" cell per process of <c>--cpu</c>, empty without it.</summary>
    private readonly record struct Stats(double P50, double P99, double Throughput, string Cpu);

    private static bool s_phaseTimes;

    /// <summary>
    /// <paramref name="count"/> calls at <paramref name="concurrency"/>, in passes of <paramref name="passLength"/>
    /// (all of them in one pass by default): a pass starts once the one before has finished.
    /// </summary>
    private static async Task<Stats> MeasureAsync(string phase, int count, int concurrency, ProcessCpu cpu, Func<int, Task> call, int? passLength = null)
    {
        var latencies = new double[count];
        var pass = passLength ?? count;
        var ticksBefore = cpu.Ticks();
        var start = Stopwatch.GetTimestamp(); // CLOCK_MONOTONIC in ns on Linux
        var total = Stopwatch.StartNew();
        for (var first = 0; first < count; first += pass)
        {
            await Parallel.ForAsync(first, Math.Min(count, first + pass), new ParallelOptions { MaxDegreeOfParallelism = concurrency }, async (i, _) =>
            {
                var watch = Stopwatch.StartNew();
                await call(i);
                latencies[i] = watch.Elapsed.TotalMilliseconds;
            });
        }

        total.Stop();
        var cells = cpu.PerRequestCells(ticksBefore, count);
        if (s_phaseTimes)
        {
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"phase {phase} {start} {Stopwatch.GetTimestamp()}"));
        }

        Array.Sort(latencies);
        return new Stats(latencies[count / 2], latencies[Math.Min(count - 1, (int)Math.Ceiling(count * 0.99) - 1)], count / total.Elapsed.TotalSeconds, cells);
    }

    private static string? Option(string[] args, string name)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }
}
