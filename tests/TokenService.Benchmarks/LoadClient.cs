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
/// </summary>
internal static class LoadClient
{
    public static async Task<int> RunAsync(string[] args)
    {
        var url = Option(args, "--url") ?? "http://127.0.0.1:7071";
        var requests = int.Parse(Option(args, "--requests") ?? "1000", CultureInfo.InvariantCulture);
        var concurrency = int.Parse(Option(args, "--concurrency") ?? "8", CultureInfo.InvariantCulture);
        var label = Option(args, "--label") ?? url;
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
            using var response = await http.PostAsync("/dev-idp/id-token", new FormUrlEncodedContent([new("sub", $"load-{run}-{i}")]), ct);
            idTokens[i] = JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct)).RootElement.GetProperty("id_token").GetString()!;
        });

        var refreshTokens = new string[requests];
        var issue = await MeasureAsync(requests, concurrency, async i =>
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

        var refresh = await MeasureAsync(requests, concurrency, async i =>
        {
            using var response = await http.PostAsync("/oauth2/token", new FormUrlEncodedContent([new("grant_type", "refresh_token"), new("refresh_token", refreshTokens[i])]));
            if (!response.IsSuccessStatusCode)
            {
                throw new InvalidOperationException(await response.Content.ReadAsStringAsync());
            }
        });

        Console.WriteLine($"| {label} | issue | {requests} | {concurrency} | {issue.P50:F2} | {issue.P99:F2} | {issue.Throughput:F0} |");
        Console.WriteLine($"| {label} | refresh | {requests} | {concurrency} | {refresh.P50:F2} | {refresh.P99:F2} | {refresh.Throughput:F0} |");
        return 0;
    }

    private readonly record struct Stats(double P50, double P99, double Throughput);

    private static async Task<Stats> MeasureAsync(int count, int concurrency, Func<int, Task> call)
    {
        var latencies = new double[count];
        var total = Stopwatch.StartNew();
        await Parallel.ForAsync(0, count, new ParallelOptions { MaxDegreeOfParallelism = concurrency }, async (i, _) =>
        {
            var watch = Stopwatch.StartNew();
            await call(i);
            latencies[i] = watch.Elapsed.TotalMilliseconds;
        });
        total.Stop();
        Array.Sort(latencies);
        return new Stats(latencies[count / 2], latencies[Math.Min(count - 1, (int)Math.Ceiling(count * 0.99) - 1)], count / total.Elapsed.TotalSeconds);
    }

    private static string? Option(string[] args, string name)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }
}
