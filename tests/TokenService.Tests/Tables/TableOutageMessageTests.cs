using System.Net;
using System.Net.Sockets;
using Azure.Data.Tables;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using TokenService.Azure.Tables;
using TokenService.Azure.Tables.Stores;
using TokenService.Configuration;
using TokenService.Http;
using TokenService.Sessions;
using TokenService.Tests.Infrastructure;

namespace TokenService.Tests.Tables;

/// <summary>
/// The warning an operator reads when the Table service does not answer (docs/api.md, "GET /healthz"): it names the endpoint
/// that did not answer and reads as one sentence (it used to be "Table service unreachable after retries.." with no
/// address). In process: a store on a loopback port nothing listens on, the SDK's own retries, and the log line of
/// the 503 the request gets.
/// </summary>
public sealed class TableOutageMessageTests
{
    [Fact]
    public async Task An_unreachable_table_service_is_logged_once_punctuated_with_its_endpoint()
    {
        var port = ClosedLoopbackPort();
        var options = TableStorage.DefaultOptions();
        options.Retry.MaxRetries = 2;
        options.Retry.Delay = TimeSpan.FromMilliseconds(1);
        options.Retry.MaxDelay = TimeSpan.FromMilliseconds(1);
        var connectionString = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
            + "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
            + $"TableEndpoint=http://127.0.0.1:{port}/devstoreaccount1;";
        var store = new TableSessionStore(new TableProvisioner(new TableServiceClient(connectionString, options)));

        var outage = await Assert.ThrowsAsync<DependencyUnavailableException>(async () => await store.GetSessionAsync(SessionIds.NewSessionId("ada"), default));
        Assert.Equal($"Table service at http://127.0.0.1:{port}/devstoreaccount1/{TableNames.Sessions} unreachable after 3 tries", outage.Message);

        var logs = new CapturingLoggerProvider();
        var services = new ServiceCollection();
        services.AddLogging();
        logs.AddTo(services);
        services.AddOptions<TokenServiceOptions>();
        services.AddSingleton(TimeProvider.System);
        await using var provider = services.BuildServiceProvider();
        var context = new DefaultHttpContext { RequestServices = provider };
        context.Response.Body = new MemoryStream();

        await EndpointInvoker.InvokeAsync(context, oauthErrors: true, async ctx => await store.GetSessionAsync(SessionIds.NewSessionId("ada"), ctx.RequestAborted));

        Assert.Equal(503, context.Response.StatusCode);
        var line = Assert.Single(logs.Entries, e => e.Id.Id == 1001).Message;
        Assert.Equal($"Dependency storage unavailable: Table service at http://127.0.0.1:{port}/devstoreaccount1/{TableNames.Sessions} unreachable after 3 tries. Answered 503.", line);
    }

    [Fact]
    public void Outage_messages_name_the_endpoint_without_its_query_and_end_without_a_period()
    {
        var endpoint = new Uri("https://acme.table.core.windows.net/Sessions?sv=2024-01-01&sig=secret-signature");
        var messages = new[]
        {
            TableFaults.AsUnavailable(new AggregateException(new TaskCanceledException(), new TaskCanceledException()), default, endpoint)!.Message,
            TableFaults.AsUnavailable(new TaskCanceledException("network timeout"), default, endpoint)!.Message,
            TableFaults.AsUnavailable(new global::Azure.RequestFailedException(0, "Connection refused (acme.table.core.windows.net:443)."), default, endpoint)!.Message,
            TableFaults.AsUnavailable(new global::Azure.RequestFailedException(503, "busy", "ServerBusy", null), default, endpoint)!.Message,
        };

        Assert.All(messages, m => Assert.StartsWith("Table service at https://acme.table.core.windows.net/Sessions ", m, StringComparison.Ordinal));
        Assert.All(messages, m => Assert.DoesNotContain("secret-signature", m, StringComparison.Ordinal));
        Assert.All(messages, m => Assert.False(m.EndsWith('.'), m));
        Assert.Equal("Table service at https://acme.table.core.windows.net/Sessions unreachable after 2 tries", messages[0]);
    }

    /// <summary>A loopback port nothing listens on (taken, then released at once).</summary>
    private static int ClosedLoopbackPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
