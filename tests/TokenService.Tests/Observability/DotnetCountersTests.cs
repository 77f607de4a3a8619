using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using TokenService.Tests.Infrastructure;
using TokenService.Tests.Tables;

namespace TokenService.Tests.Observability;

/// <summary>
/// docs/operations.md "The numbers without an exporter": .NET's own counters tool reads the service's meter from a
/// running host with no exporter configured. The tool is the repository's local dotnet tool
/// (.config/dotnet-tools.json, restored by scripts/test.sh), run against the built standalone host as an operator
/// runs both.
/// </summary>
public sealed class DotnetCountersTests
{
    [Fact]
    public async Task Dotnet_counters_reads_tokens_issued_from_a_running_host_without_an_exporter()
    {
        var root = AzuriteFixture.FindRepositoryRoot();
        var scratch = Directory.CreateTempSubdirectory("counters-").FullName;
        var port = FreePort();
        var issuer = $"http://127.0.0.1:{port}";
        var host = new ProcessStartInfo("dotnet", [BuiltHosts.ServerDll, "--urls", issuer])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        host.Environment["ASPNETCORE_ENVIRONMENT"] = "Development";
        host.Environment["TokenService__Issuer"] = issuer;
        host.Environment["Keys__DevelopmentKeyPath"] = Path.Combine(scratch, "keys.json");
        host.Environment["RateLimits__PerIpPerMinute"] = "0"; // the loop below asks for ID tokens as fast as it can
        host.Environment.Remove("OTEL_EXPORTER_OTLP_ENDPOINT");
        host.Environment.Remove("APPLICATIONINSIGHTS_CONNECTION_STRING");
        using var server = Process.Start(host)!;
        server.OutputDataReceived += (_, _) => { };
        server.ErrorDataReceived += (_, _) => { };
        server.BeginOutputReadLine();
        server.BeginErrorReadLine();
        using var http = new HttpClient { BaseAddress = new Uri(issuer), Timeout = TimeSpan.FromSeconds(10) };
        try
        {
            await WaitUntilHealthyAsync(http, server);
            var csv = Path.Combine(scratch, "counters.csv");
            var counters = new ProcessStartInfo("dotnet",
                ["tool", "run", "dotnet-counters", "--", "collect", "-p", server.Id.ToString(CultureInfo.InvariantCulture),
                 "--counters", "TokenService", "--format", "csv", "-o", csv, "--duration", "00:00:05", "--refresh-interval", "1"])
            {
                WorkingDirectory = root, // the tool manifest's folder
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            using var collector = Process.Start(counters)!;
            var collectorOutput = collector.StandardOutput.ReadToEndAsync();
            var collectorErrors = collector.StandardError.ReadToEndAsync();

            // Tokens are issued for as long as the tool collects, so every interval it reports has some to count.
            var issued = 0;
            using var guard = new CancellationTokenSource(TimeSpan.FromSeconds(90)); // a hang guard, not pacing
            while (!collector.HasExited && !guard.IsCancellationRequested)
            {
                await ExchangeAsync(http, "counted-user-" + issued);
                issued++;
            }

            await collector.WaitForExitAsync(guard.Token);
            var output = await collectorOutput + await collectorErrors;
            Assert.True(collector.ExitCode == 0 && File.Exists(csv), "dotnet-counters failed (is it restored? dotnet tool restore):\n" + output);

            var issuedRows = File.ReadLines(csv)
                .Where(line => line.Contains(",TokenService,tokenservice.tokens.issued ", StringComparison.Ordinal)
                    && line.Contains("tokenservice.client.id=dev-confidential", StringComparison.Ordinal))
                .ToList();
            Assert.NotEmpty(issuedRows);
            var counted = issuedRows.Sum(row => double.Parse(row[(row.LastIndexOf(',') + 1)..], CultureInfo.InvariantCulture));
            Assert.InRange(counted, 1, issued);
        }
        finally
        {
            if (!server.HasExited)
            {
                server.Kill(entireProcessTree: true);
            }

            await server.WaitForExitAsync();
            Directory.Delete(scratch, recursive: true);
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static async Task WaitUntilHealthyAsync(HttpClient http, Process server)
    {
        using var guard = new CancellationTokenSource(TimeSpan.FromSeconds(60)); // a hang guard, not pacing
        while (true)
        {
            Assert.False(server.HasExited, "the host exited before it answered /healthz");
            try
            {
                if ((await http.GetAsync("/healthz", guard.Token)).IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
                // not listening yet
            }

            await Task.Delay(200, guard.Token);
        }
    }

    private static async Task ExchangeAsync(HttpClient http, string subject)
    {
        using var idTokenResponse = await http.PostAsync("/dev-idp/id-token", new FormUrlEncodedContent([new("sub", subject)]));
        using var idToken = JsonDocument.Parse(await idTokenResponse.Content.ReadAsStringAsync());
        using var request = new HttpRequestMessage(HttpMethod.Post, "/oauth2/token")
        {
            Content = new FormUrlEncodedContent([
                new("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
                new("subject_token", idToken.RootElement.GetProperty("id_token").GetString()!),
                new("subject_token_type", "urn:ietf:params:oauth:token-type:id_token"),
                new("scope", "api.read"),
            ]),
        };
        request.Headers.Authorization = new("Basic", Convert.ToBase64String("dev-confidential:dev-confidential-secret"u8));
        using var response = await http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }
}
