using System.Net;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using TokenService.Clients;
using TokenService.Configuration;
using TokenService.SharedSignals;

namespace TokenService.Tests.SharedSignals;

/// <summary>
/// A push stream's delivery (RFC 8935) by <see cref="SsfPushDeliveryService"/>, on a <see cref="FakeTimeProvider"/>, to a
/// <see cref="PushReceiver"/>: the back-off schedule is read off the clock, which only the test moves.
/// </summary>
public sealed class PushHarness : IAsyncDisposable
{
    public const string Endpoint = "https://receiver.example/ssf/events";
    public const string Authorization = "Bearer receiver-push-secret";

    private readonly SsfPushDeliveryService _service;

    /// <param name="hostServices">A host's services, for its SET signer.</param>
    /// <param name="options">The transmitter's settings (enabled, defaults otherwise, when null).</param>
    /// <param name="serviceClock">The clock the delivery service reads, made from the test's fake clock (that clock itself by default).</param>
    public PushHarness(IServiceProvider hostServices, SharedSignalsOptions? options = null, Func<FakeTimeProvider, TimeProvider>? serviceClock = null)
    {
        Time = new FakeTimeProvider(new DateTimeOffset(2026, 12, 6, 12, 0, 0, TimeSpan.Zero));
        Receiver = new PushReceiver(Time);
        var orders = new RegisteredClient { ClientId = "api", Type = ClientType.ResourceServer, AllowedAudiences = ["api://orders"] };
        var ssf = Options.Create(options ?? new SharedSignalsOptions { Enabled = true });
        Registry = new SsfStreamRegistry(new OneClient(orders), ssf, NullLogger<SsfStreamRegistry>.Instance);
        Stream = Registry.TryCreate(orders, null, null)!;
        lock (Stream.Gate)
        {
            Stream.Push = new SsfPushDelivery(new Uri(Endpoint), Authorization);
        }

        _service = new SsfPushDeliveryService(Registry, hostServices.GetRequiredService<SecurityEventTokenSigner>(), new ReceiverClients(Receiver), ssf, serviceClock?.Invoke(Time) ?? Time, NullLogger<SsfPushDeliveryService>.Instance);
    }

    public FakeTimeProvider Time { get; }

    public PushReceiver Receiver { get; }

    public SsfStreamRegistry Registry { get; }

    public SsfStream Stream { get; }

    public Task StartAsync() => _service.StartAsync(default);

    /// <summary>Queues a verification event (SSF 1.0 §8.1.4.1) named by <paramref name="state"/>, as a stand-in for any event.</summary>
    public void Queue(string state)
    {
        // The memory store completes at once.
        var queued = Registry.EnqueueVerificationAsync(Stream, state, Time.GetUtcNow());
        Assert.True(queued.IsCompletedSuccessfully && queued.Result);
    }

    public static string StateOf(PushedRequest request) =>
        System.Text.Json.JsonDocument.Parse(new Microsoft.IdentityModel.JsonWebTokens.JsonWebToken(request.Body).GetPayloadValue<object>("events").ToString()!)
            .RootElement.GetProperty(SsfProtocol.VerificationEventType).GetProperty("state").GetString()!;

    /// <summary>Waits (on the delivery thread, not the clock) until the stream records its <paramref name="failures"/>th failure in a row; its retry time.</summary>
    public async Task<DateTimeOffset> RetryAtAfterAsync(int failures)
    {
        using var guard = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (true)
        {
            lock (Stream.Gate)
            {
                if (Stream.PushFailures == failures && Stream.PushRetryAt is { } at)
                {
                    return at;
                }
            }

            await Task.Delay(1, guard.Token);
        }
    }

    /// <summary>Waits until the stream holds <paramref name="pending"/> events.</summary>
    public async Task PendingAsync(int pending)
    {
        using var guard = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (Stream.Pending != pending)
        {
            await Task.Delay(1, guard.Token);
        }
    }

    public static HttpResponseMessage Status(HttpStatusCode status, string? json = null) =>
        new(status) { Content = json is null ? null : new StringContent(json, Encoding.UTF8, "application/json") };

    public async ValueTask DisposeAsync()
    {
        await _service.StopAsync(default);
        _service.Dispose();
    }

    private sealed class OneClient(RegisteredClient client) : IClientStore
    {
        public RegisteredClient? Find(string clientId) => clientId == client.ClientId ? client : null;

        public bool IsAllowedOrigin(string origin) => false;
    }

    private sealed class ReceiverClients(PushReceiver receiver) : IHttpClientFactory
    {
        public HttpClient CreateClient(string name)
        {
            Assert.Equal(SsfPushDeliveryService.HttpClientName, name);
            return new HttpClient(receiver, disposeHandler: false);
        }
    }
}

/// <summary>Push delivery's failure handling: back-off, Retry-After, order per stream, 401, timeouts, paused and disabled streams.</summary>
public sealed class SsfPushDeliveryTests(SharedSignalsHostFixture fixture) : IClassFixture<SharedSignalsHostFixture>
{
    [Fact]
    public async Task A_5xx_is_retried_after_1_2_and_4_seconds_with_jitter_the_same_set_each_time_until_202()
    {
        await using var push = new PushHarness(fixture.Host.Services);
        push.Receiver.Answer = (index, _, _) => Task.FromResult(PushHarness.Status(index < 3 ? HttpStatusCode.ServiceUnavailable : HttpStatusCode.Accepted));
        await push.StartAsync();
        push.Queue("one");

        var first = await push.Receiver.NextAsync();
        var failedAt = first.At;
        foreach (var (failures, backoff) in new[] { (1, 1), (2, 2), (3, 4) })
        {
            var retryAt = await push.RetryAtAfterAsync(failures);
            // 1 s doubling, plus at most 10% jitter.
            Assert.InRange(retryAt - failedAt, TimeSpan.FromSeconds(backoff), TimeSpan.FromSeconds(backoff * 1.1));
            push.Time.SetUtcNow(retryAt);
            var retry = await push.Receiver.NextAsync();
            Assert.Equal(retryAt, retry.At); // not one tick before its time
            Assert.Equal(first.Body, retry.Body); // the same SET, the same jti (RFC 8935 §2)
            failedAt = retry.At;
        }

        await push.PendingAsync(0);
        Assert.Equal(4, push.Receiver.Received.Count);
        lock (push.Stream.Gate)
        {
            Assert.Equal(0, push.Stream.PushFailures);
        }
    }

    [Fact]
    public async Task The_back_off_doubles_up_to_5_minutes_and_no_further()
    {
        await using var push = new PushHarness(fixture.Host.Services);
        push.Receiver.Answer = (_, _, _) => Task.FromResult(PushHarness.Status(HttpStatusCode.BadGateway));
        await push.StartAsync();
        push.Queue("stuck");
        var failedAt = (await push.Receiver.NextAsync()).At;
        for (var failures = 1; failures <= 11; failures++)
        {
            var retryAt = await push.RetryAtAfterAsync(failures);
            var expected = Math.Min(Math.Pow(2, failures - 1), 300);
            Assert.InRange((retryAt - failedAt).TotalSeconds, expected, expected * 1.1);
            push.Time.SetUtcNow(retryAt);
            failedAt = (await push.Receiver.NextAsync()).At;
        }
    }

    [Fact]
    public async Task A_429_is_retried_no_sooner_than_its_Retry_After()
    {
        await using var push = new PushHarness(fixture.Host.Services);
        push.Receiver.Answer = (index, _, _) =>
        {
            var response = PushHarness.Status(index == 0 ? HttpStatusCode.TooManyRequests : HttpStatusCode.Accepted);
            response.Headers.RetryAfter = new System.Net.Http.Headers.RetryConditionHeaderValue(TimeSpan.FromSeconds(30));
            return Task.FromResult(response);
        };
        await push.StartAsync();
        push.Queue("slow-down");

        var first = await push.Receiver.NextAsync();
        var retryAt = await push.RetryAtAfterAsync(1);
        Assert.Equal(first.At + TimeSpan.FromSeconds(30), retryAt);
        push.Time.SetUtcNow(retryAt);
        Assert.Equal(first.Jti, (await push.Receiver.NextAsync()).Jti);
        await push.PendingAsync(0);
    }

    [Fact]
    public async Task Events_go_in_order_per_stream_a_failed_one_is_retried_before_the_next()
    {
        await using var push = new PushHarness(fixture.Host.Services);
        push.Receiver.Answer = (index, _, _) => Task.FromResult(PushHarness.Status(index == 0 ? HttpStatusCode.InternalServerError : HttpStatusCode.Accepted));
        await push.StartAsync();
        push.Queue("first");
        Assert.Equal("first", PushHarness.StateOf(await push.Receiver.NextAsync()));
        var retryAt = await push.RetryAtAfterAsync(1);
        push.Queue("second");
        push.Queue("third");

        push.Time.SetUtcNow(retryAt);
        Assert.Equal(["first", "second", "third"], new[] { await push.Receiver.NextAsync(), await push.Receiver.NextAsync(), await push.Receiver.NextAsync() }.Select(PushHarness.StateOf));
        await push.PendingAsync(0);
        Assert.Equal(4, push.Receiver.Received.Count);
    }

    [Fact]
    public async Task A_401_marks_the_delivery_failing_and_backs_off_with_the_set_kept()
    {
        await using var push = new PushHarness(fixture.Host.Services);
        push.Receiver.Answer = (index, _, _) => Task.FromResult(PushHarness.Status(index == 0 ? HttpStatusCode.Unauthorized : HttpStatusCode.Accepted));
        await push.StartAsync();
        push.Queue("who-are-you");
        var first = await push.Receiver.NextAsync();
        var retryAt = await push.RetryAtAfterAsync(1);
        Assert.InRange(retryAt - first.At, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1.1));
        Assert.Equal(1, push.Stream.Pending);
        push.Time.SetUtcNow(retryAt);
        Assert.Equal(first.Jti, (await push.Receiver.NextAsync()).Jti);
        await push.PendingAsync(0);
    }

    [Fact]
    public async Task A_receiver_that_does_not_answer_within_the_timeout_is_retried()
    {
        await using var push = new PushHarness(fixture.Host.Services, new SharedSignalsOptions { Enabled = true, PushTimeout = TimeSpan.FromSeconds(10) });
        push.Receiver.Answer = async (index, _, cancellationToken) =>
        {
            if (index == 0)
            {
                await Task.Delay(Timeout.Infinite, cancellationToken); // until the pusher's timeout cancels it
            }

            return PushHarness.Status(HttpStatusCode.Accepted);
        };
        await push.StartAsync();
        push.Queue("hanging");
        var first = await push.Receiver.NextAsync();
        push.Time.Advance(TimeSpan.FromSeconds(10));
        var retryAt = await push.RetryAtAfterAsync(1);
        Assert.InRange(retryAt - first.At, TimeSpan.FromSeconds(11), TimeSpan.FromSeconds(11.1));
        push.Time.SetUtcNow(retryAt);
        Assert.Equal(first.Jti, (await push.Receiver.NextAsync()).Jti);
        await push.PendingAsync(0);
    }

    [Fact]
    public async Task A_paused_push_stream_holds_its_events_and_sends_them_once_enabled_a_disabled_one_drops_them()
    {
        await using var push = new PushHarness(fixture.Host.Services);
        lock (push.Stream.Gate)
        {
            push.Stream.Status = SsfStreamStatus.Paused;
        }

        await push.StartAsync();
        push.Queue("held");
        push.Time.Advance(TimeSpan.FromMinutes(10));
        Assert.Equal(1, push.Stream.Pending);
        Assert.False(push.Receiver.HasUnread);

        lock (push.Stream.Gate)
        {
            push.Stream.Status = SsfStreamStatus.Enabled;
        }

        push.Registry.NotifyDeliveryWork();
        Assert.Equal("held", PushHarness.StateOf(await push.Receiver.NextAsync()));
        await push.PendingAsync(0);

        lock (push.Stream.Gate)
        {
            push.Stream.Status = SsfStreamStatus.Disabled;
        }

        Assert.False(await push.Registry.EnqueueVerificationAsync(push.Stream, "dropped", push.Time.GetUtcNow()));
        Assert.Equal(0, push.Stream.Pending);
    }

    [Fact]
    public async Task A_retry_goes_out_when_the_clock_passes_its_time_while_the_service_sets_up_its_wait()
    {
        // The clock jumps 10 s just as the service makes the timer for its 1 s back-off: a timer counts from the
        // clock's time when it is made, so the service must look at the clock again rather than wait for that timer
        // (which would fire 10 s too late; here, never, as nothing moves the clock again).
        await using var push = new PushHarness(fixture.Host.Services, serviceClock: fake => new ClockJumpingAtFirstShortTimer(fake, TimeSpan.FromSeconds(10)));
        push.Receiver.Answer = (index, _, _) => Task.FromResult(PushHarness.Status(index == 0 ? HttpStatusCode.ServiceUnavailable : HttpStatusCode.Accepted));
        await push.StartAsync();
        push.Queue("one");

        var first = await push.Receiver.NextAsync();
        var retry = await push.Receiver.NextAsync(); // with the old wait: a timeout of the 10 s hang guard
        Assert.True(retry.At >= first.At + TimeSpan.FromSeconds(10), "the retry went out before the clock passed its back-off");
        Assert.Equal(first.Body, retry.Body);
        await push.PendingAsync(0);
    }

    /// <summary>A fake clock that moves forward by <paramref name="jump"/> when the first timer shorter than 5 s is made (a back-off wait; the push timeout is 10 s).</summary>
    private sealed class ClockJumpingAtFirstShortTimer(FakeTimeProvider fake, TimeSpan jump) : TimeProvider
    {
        private int _jumped;

        public override DateTimeOffset GetUtcNow() => fake.GetUtcNow();

        public override long GetTimestamp() => fake.GetTimestamp();

        public override long TimestampFrequency => fake.TimestampFrequency;

        public override TimeZoneInfo LocalTimeZone => fake.LocalTimeZone;

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            if (dueTime > TimeSpan.Zero && dueTime < TimeSpan.FromSeconds(5) && Interlocked.Exchange(ref _jumped, 1) == 0)
            {
                fake.Advance(jump);
            }

            return fake.CreateTimer(callback, state, dueTime, period);
        }
    }
}
