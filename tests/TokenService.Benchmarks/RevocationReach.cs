using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace TokenService.Benchmarks;

/// <summary>
/// How fast and at what cost an API on the resource-server library learns that a session ended (docs/shared-signals.md,
/// "What it costs and how fast it is"), measured from outside against a running token service and sample API
/// (tests/load/ssf.sh starts both). Loopback only; stops by itself.
/// <list type="bullet">
/// <item><c>ssf-latency --service URL --api URL --rounds N --parallel P --kind force-logout|idp-event|reuse</c>: per
/// round a new user signs in, the API accepts its access token (so the API has its status cached), then, after a random
/// wait of up to <c>--stagger-ms</c> (default 2000), the session is ended the named way; the time from the answer of the
/// request that ended it (the commit is done when it answers) to the API's first refusal of the token, polled every
/// 10 ms. Prints p50, p99 and max.</item>
/// <item><c>ssf-load --service URL --api URL --sessions N --seconds S --interval-ms I</c>: N users sign in, then each
/// calls the API every I ms (staggered) for S seconds. Prints the API requests made and how many were refused; the
/// script counts the introspection requests the token service served and its CPU in the same window.</item>
/// </list>
/// </summary>
internal static class RevocationReach
{
    private static readonly string ConfidentialBasic = Convert.ToBase64String(Encoding.UTF8.GetBytes("dev-confidential:dev-confidential-secret"));
    private static readonly string AdminBasic = Convert.ToBase64String(Encoding.UTF8.GetBytes("dev-admin:dev-admin-secret"));

    public static async Task<int> LatencyAsync(string[] args)
    {
        var (service, api) = (new Uri(Option(args, "--service") ?? "http://127.0.0.1:7071"), new Uri(Option(args, "--api") ?? "http://127.0.0.1:5080"));
        var rounds = int.Parse(Option(args, "--rounds") ?? "20", CultureInfo.InvariantCulture);
        var parallel = int.Parse(Option(args, "--parallel") ?? "10", CultureInfo.InvariantCulture);
        var kind = Option(args, "--kind") ?? "force-logout";
        var give = TimeSpan.FromSeconds(double.Parse(Option(args, "--give-up-seconds") ?? "60", CultureInfo.InvariantCulture));
        // The rounds run in parallel: without a random wait before each end they would all meet a poll receiver at the
        // same point of its poll cycle and measure one phase twenty times.
        var stagger = int.Parse(Option(args, "--stagger-ms") ?? "2000", CultureInfo.InvariantCulture);
        if (!service.IsLoopback || !api.IsLoopback)
        {
            Console.Error.WriteLine("Loopback addresses only.");
            return 2;
        }

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        var run = Guid.NewGuid().ToString("N")[..8];
        var latencies = new double[rounds];
        var failures = 0;
        await Parallel.ForAsync(0, rounds, new ParallelOptions { MaxDegreeOfParallelism = parallel }, async (i, ct) =>
        {
            var user = $"reach-{run}-{i}";
            var (access, refresh) = await SignInAsync(http, service, user, ct);
            if (await CallApiAsync(http, api, access, ct) != HttpStatusCode.OK)
            {
                throw new InvalidOperationException("The API refused a fresh token.");
            }

            await Task.Delay(Random.Shared.Next(stagger + 1), ct);
            await EndSessionAsync(http, service, kind, user, refresh, ct);
            var ended = Stopwatch.GetTimestamp();
            while (await CallApiAsync(http, api, access, ct) == HttpStatusCode.OK)
            {
                if (Stopwatch.GetElapsedTime(ended) > give)
                {
                    Interlocked.Increment(ref failures);
                    latencies[i] = double.NaN;
                    return;
                }

                await Task.Delay(10, ct);
            }

            latencies[i] = Stopwatch.GetElapsedTime(ended).TotalMilliseconds;
        });

        var sorted = latencies.Where(l => !double.IsNaN(l)).Order().ToArray();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| {Option(args, "--label") ?? kind} | {kind} | {sorted.Length} | {Percentile(sorted, 0.5):F0} | {Percentile(sorted, 0.99):F0} | {(sorted.Length > 0 ? sorted[^1] : double.NaN):F0} | {failures} |"));
        return failures == 0 ? 0 : 1;
    }

    public static async Task<int> LoadAsync(string[] args)
    {
        var (service, api) = (new Uri(Option(args, "--service") ?? "http://127.0.0.1:7071"), new Uri(Option(args, "--api") ?? "http://127.0.0.1:5080"));
        var sessions = int.Parse(Option(args, "--sessions") ?? "1000", CultureInfo.InvariantCulture);
        var seconds = double.Parse(Option(args, "--seconds") ?? "300", CultureInfo.InvariantCulture);
        var interval = TimeSpan.FromMilliseconds(double.Parse(Option(args, "--interval-ms") ?? "2000", CultureInfo.InvariantCulture));
        if (!service.IsLoopback || !api.IsLoopback)
        {
            Console.Error.WriteLine("Loopback addresses only.");
            return 2;
        }

        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 64 }) { Timeout = TimeSpan.FromSeconds(30) };
        var run = Guid.NewGuid().ToString("N")[..8];
        var tokens = new string[sessions];
        await Parallel.ForAsync(0, sessions, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (i, ct) =>
            tokens[i] = (await SignInAsync(http, service, $"load-{run}-{i}", ct)).Access);

        // The window the script measures the token service in starts here (a line on stderr it waits for).
        Console.Error.WriteLine("calls-start");
        long calls = 0, refused = 0;
        var stop = Stopwatch.GetTimestamp() + (long)(seconds * Stopwatch.Frequency);
        var tasks = new Task[sessions];
        for (var i = 0; i < sessions; i++)
        {
            var token = tokens[i];
            var offset = TimeSpan.FromTicks(interval.Ticks * i / sessions);
            tasks[i] = Task.Run(async () =>
            {
                await Task.Delay(offset);
                using var timer = new PeriodicTimer(interval);
                do
                {
                    Interlocked.Increment(ref calls);
                    if (await CallApiAsync(http, api, token, CancellationToken.None) != HttpStatusCode.OK)
                    {
                        Interlocked.Increment(ref refused);
                    }
                }
                while (Stopwatch.GetTimestamp() < stop && await timer.WaitForNextTickAsync());
            });
        }

        await Task.WhenAll(tasks);
        Console.Error.WriteLine("calls-end");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"api_requests={calls} refused={refused}"));
        return refused == 0 ? 0 : 1;
    }

    private static async Task<(string Access, string Refresh)> SignInAsync(HttpClient http, Uri service, string user, CancellationToken ct)
    {
        using var idResponse = await http.PostAsync(new Uri(service, "/dev-idp/id-token"), new FormUrlEncodedContent([new("sub", user)]), ct);
        var idToken = JsonDocument.Parse(await idResponse.Content.ReadAsStringAsync(ct)).RootElement.GetProperty("id_token").GetString()!;
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(service, "/oauth2/token"))
        {
            Content = new FormUrlEncodedContent(
            [
                new("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
                new("subject_token", idToken),
                new("subject_token_type", "urn:ietf:params:oauth:token-type:id_token"),
                new("scope", "api.read"),
            ]),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Basic", ConfidentialBasic);
        using var response = await http.SendAsync(request, ct);
        var body = await response.Content.ReadAsStringAsync(ct);
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException(body);
        }

        var root = JsonDocument.Parse(body).RootElement;
        return (root.GetProperty("access_token").GetString()!, root.GetProperty("refresh_token").GetString()!);
    }

    private static async Task<HttpStatusCode> CallApiAsync(HttpClient http, Uri api, string accessToken, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(api, "/orders"));
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", accessToken);
        using var response = await http.SendAsync(request, ct);
        return response.StatusCode;
    }

    private static async Task EndSessionAsync(HttpClient http, Uri service, string kind, string user, string refresh, CancellationToken ct)
    {
        HttpRequestMessage request;
        switch (kind)
        {
            case "force-logout":
                request = new HttpRequestMessage(HttpMethod.Post, new Uri(service, "/management/users/revoke"))
                {
                    Content = new FormUrlEncodedContent([new("user_id", user)]),
                };
                request.Headers.Authorization = new AuthenticationHeaderValue("Basic", AdminBasic);
                break;
            case "idp-event":
                // docs/idp-events.md: our own schema, Event Grid delivery (the development host checks no webhook key
                // unless Events__WebhookSecret is set; tests/load/ssf.sh sets none).
                var events = JsonSerializer.Serialize(new[]
                {
                    new { id = Guid.NewGuid().ToString(), eventType = "TokenService.Idp.AccountDisabled", eventTime = DateTimeOffset.UtcNow, subject = "users/" + user, dataVersion = "1", data = new { userId = user } },
                });
                request = new HttpRequestMessage(HttpMethod.Post, new Uri(service, "/events/idp"))
                {
                    Content = new StringContent(events, Encoding.UTF8, "application/json"),
                };
                break;
            case "reuse":
                // RFC 6749 §10.4 / docs/api.md: a refresh token presented again after its rotation ends the session.
                await RefreshAsync(http, service, refresh, ct);
                request = RefreshRequest(service, refresh);
                break;
            default:
                throw new ArgumentException("--kind is force-logout, idp-event or reuse.");
        }

        using (request)
        using (var response = await http.SendAsync(request, ct))
        {
            if (kind == "reuse" ? response.StatusCode != HttpStatusCode.BadRequest : !response.IsSuccessStatusCode)
            {
                throw new InvalidOperationException($"{kind}: HTTP {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(ct)}");
            }
        }
    }

    private static async Task RefreshAsync(HttpClient http, Uri service, string refresh, CancellationToken ct)
    {
        using var request = RefreshRequest(service, refresh);
        using var response = await http.SendAsync(request, ct);
        response.EnsureSuccessStatusCode();
    }

    private static HttpRequestMessage RefreshRequest(Uri service, string refresh)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, new Uri(service, "/oauth2/token"))
        {
            Content = new FormUrlEncodedContent([new("grant_type", "refresh_token"), new("refresh_token", refresh)]),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Basic", ConfidentialBasic);
        return request;
    }

    private static double Percentile(double[] sorted, double p) =>
        sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p * sorted.Length) - 1)];

    private static string? Option(string[] args, string name)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }
}
