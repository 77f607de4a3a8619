using System.Net;
using System.Text;
using Azure.Core;
using Azure.Core.Pipeline;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Http;
using Microsoft.IdentityModel.JsonWebTokens;
using TokenFunctions;
using TokenService.Azure.Tables;
using TokenService.SharedSignals;
using TokenService.Tests.Infrastructure;
using TokenService.Tests.Tables;
using static TokenService.Tests.Infrastructure.TokenServiceTestHost;

namespace TokenService.Tests.SharedSignals;

/// <summary>
/// The transmitter on Table Storage through the hosts: two Functions instances over one table, the push outbox drained
/// by the Functions timer trigger (in-process harness, whose hosted services do not run, so only the trigger pushes),
/// and the stream API failing closed on storage faults.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class SharedSignalsTableHostTests(AzuriteFixture azurite)
{
    private const string Endpoint = "https://receiver.example/ssf/events";

    private Dictionary<string, string?> Settings => new(SharedSignalsHostFixture.Settings) { ["Storage:TableConnectionString"] = azurite.ConnectionString };

    [Fact]
    public async Task A_session_ended_on_one_instance_is_pushed_by_the_functions_timer_of_another()
    {
        var receiver = new PushReceiver(TimeProvider.System);
        void PushTo(IServiceCollection s) =>
            s.PostConfigure<HttpClientFactoryOptions>(SsfPushDeliveryService.HttpClientName, o => o.HttpMessageHandlerBuilderActions.Add(b => b.PrimaryHandler = receiver));
        await using var one = await StartAsync(HostKind.Functions, Settings, services: PushTo);
        await using var two = await StartAsync(HostKind.Functions, Settings, services: PushTo);

        using var created = await SendAsync(one, HttpMethod.Post, "/ssf/streams", $$$"""{"delivery":{"method":"urn:ietf:rfc:8935","endpoint_url":"{{{Endpoint}}}"}}""");
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var streamId = (await JsonAsync(created)).GetProperty("stream_id").GetString()!;
        try
        {
            var user = "ssf-timer-" + Guid.NewGuid().ToString("N");
            var login = await one.LoginAsync(user, audience: "api://orders");
            var sid = new JsonWebToken(login.AccessToken).GetPayloadValue<string>("sid");
            using (var revoke = await one.PostFormAsync("/management/users/revoke", [new("user_id", user)], Basic("ops", OpsSecret)))
            {
                Assert.Equal(HttpStatusCode.OK, revoke.StatusCode);
            }

            await one.Services.GetRequiredService<SsfStreamRegistry>().WhenQueuedAsync();
            Assert.DoesNotContain(receiver.Received.ToList(), r => SessionOf(r.Body) == sid); // held in the table, nothing runs yet

            await ActivatorUtilities.CreateInstance<TimerFunctions>(two.Services.CreateScope().ServiceProvider)
                .SharedSignalsPushDelivery(new TimerInfo(), CancellationToken.None);

            var pushed = Assert.Single(receiver.Received.ToList(), r => SessionOf(r.Body) == sid);
            Assert.Equal(SsfPushDeliveryService.SetMediaType, pushed.ContentType);
            var store = two.Services.GetRequiredService<SsfStreamRegistry>().Store;
            var stream = (await store.GetAsync(streamId, default))!;
            Assert.Equal(0, await store.CountAsync(stream, default)); // delivered: out of the outbox for every instance
            Assert.Null(stream.LeaseOwner);
            Assert.NotNull(stream.LastDeliveryAt);
        }
        finally
        {
            using var deleted = await SendAsync(two, HttpMethod.Delete, "/ssf/streams?stream_id=" + streamId, null);
        }
    }

    [Fact]
    public async Task Table_faults_answer_503_on_the_stream_api_and_change_nothing()
    {
        var transport = new FailingWrites();
        await using var host = await StartAsync(Settings, configure: builder =>
        {
            var options = TableStorage.DefaultOptions();
            options.Transport = transport;
            options.Retry.MaxRetries = 0;
            builder.Services.AddSingleton(azurite.CreateClient(options));
        });
        const string billing = SharedSignalsHostFixture.BillingApi;
        using (var list = await SendAsync(host, HttpMethod.Get, "/ssf/streams", null, billing))
        {
            foreach (var old in (await JsonAsync(list)).EnumerateArray())
            {
                using var _ = await SendAsync(host, HttpMethod.Delete, "/ssf/streams?stream_id=" + old.GetProperty("stream_id").GetString(), null, billing);
            }
        }

        using var created = await SendAsync(host, HttpMethod.Post, "/ssf/streams", """{"description":"before"}""", billing);
        var streamId = (await JsonAsync(created)).GetProperty("stream_id").GetString()!;

        transport.Fail = true;
        using (var create = await SendAsync(host, HttpMethod.Post, "/ssf/streams", """{"description":"never"}""", billing))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, create.StatusCode);
            Assert.NotNull(create.Headers.RetryAfter);
        }

        using (var patch = await SendAsync(host, HttpMethod.Patch, "/ssf/streams", $$"""{"stream_id":"{{streamId}}","description":"changed"}""", billing))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, patch.StatusCode);
        }

        using (var status = await SendAsync(host, HttpMethod.Post, "/ssf/streams/status", $$"""{"stream_id":"{{streamId}}","status":"paused"}""", billing))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, status.StatusCode);
        }

        transport.Fail = false;
        using var after = await SendAsync(host, HttpMethod.Get, "/ssf/streams", null, billing);
        var stream = Assert.Single((await JsonAsync(after)).EnumerateArray());
        Assert.Equal("before", stream.GetProperty("description").GetString());
        using var statusAfter = await SendAsync(host, HttpMethod.Get, "/ssf/streams/status?stream_id=" + streamId, null, billing);
        Assert.Equal("enabled", (await JsonAsync(statusAfter)).GetProperty("status").GetString());
    }

    [Fact]
    public async Task When_the_outbox_cannot_be_written_the_session_end_stays_committed_and_the_failure_is_logged()
    {
        var transport = new FailingWrites();
        var logs = new CapturingLoggerProvider();
        await using var host = await StartAsync(Settings, configure: builder =>
        {
            var options = TableStorage.DefaultOptions();
            options.Transport = transport;
            options.Retry.MaxRetries = 0;
            builder.Services.AddSingleton(azurite.CreateClient(options));
            logs.AddTo(builder.Services);
        });
        var user = "ssf-unqueued-" + Guid.NewGuid().ToString("N");
        var login = await host.LoginAsync(user, audience: "api://orders");
        using (var list = await SendAsync(host, HttpMethod.Get, "/ssf/streams", null))
        {
            Assert.Equal(HttpStatusCode.OK, list.StatusCode); // the ssfstreams table exists and answers
        }

        transport.FailStreamTable = true; // the Shared Signals table only: the session store still works
        using (var revoke = await host.PostFormAsync("/management/users/revoke", [new("user_id", user)], Basic("ops", OpsSecret)))
        {
            Assert.Equal(HttpStatusCode.OK, revoke.StatusCode); // the user's request does not fail with the outbox
        }

        await host.Services.GetRequiredService<SsfStreamRegistry>().WhenQueuedAsync();
        transport.FailStreamTable = false;
        using var refresh = await host.RefreshAsync(login.RefreshToken);
        await AssertOAuthErrorAsync(refresh, "invalid_grant"); // the end is committed all the same
        Assert.Contains(logs.Entries, e => e.Id.Id == 2214 && e.Level == Microsoft.Extensions.Logging.LogLevel.Error);
    }

    private static async Task<HttpResponseMessage> SendAsync(TokenServiceTestHost host, HttpMethod method, string path, string? json, string receiver = "api")
    {
        using var request = new HttpRequestMessage(method, path);
        request.Headers.Authorization = receiver == "api" ? Basic("api", ApiSecret) : Basic(receiver, SharedSignalsHostFixture.BillingApiSecret);
        if (json is not null)
        {
            request.Content = new StringContent(json, Encoding.UTF8, "application/json");
        }

        return await host.Client.SendAsync(request);
    }

    private static string? SessionOf(string set) =>
        System.Text.Json.JsonDocument.Parse(new JsonWebToken(set).GetPayloadValue<object>("sub_id").ToString()!).RootElement
            .TryGetProperty("session", out var session) ? session.GetProperty("id").GetString() : null;

    /// <summary>Answers 503 to every write (anything but a GET) without sending it, while on.</summary>
    private sealed class FailingWrites : HttpPipelineTransport
    {
        private readonly HttpClientTransport _inner = new();

        public volatile bool Fail;

        /// <summary>Every request to the <c>ssfstreams</c> table (reads too), while on.</summary>
        public volatile bool FailStreamTable;

        public override Request CreateRequest() => _inner.CreateRequest();

        public override void Process(HttpMessage message) => ProcessAsync(message).AsTask().GetAwaiter().GetResult();

        public override async ValueTask ProcessAsync(HttpMessage message)
        {
            if ((Fail && message.Request.Method != RequestMethod.Get)
                || (FailStreamTable && message.Request.Uri.ToUri().AbsolutePath.Contains(TokenService.Azure.Tables.Stores.TableNames.SsfStreams, StringComparison.Ordinal)))
            {
                message.Response = new InjectedResponse(503);
                return;
            }

            await _inner.ProcessAsync(message);
        }
    }
}
