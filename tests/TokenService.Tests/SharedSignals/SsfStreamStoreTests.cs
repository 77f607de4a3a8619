using System.Net;
using Azure.Core;
using Azure.Core.Pipeline;
using Azure.Data.Tables;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using TokenService.Azure.Tables;
using TokenService.Azure.Tables.Stores;
using TokenService.Clients;
using TokenService.Configuration;
using TokenService.Sessions;
using TokenService.SharedSignals;
using TokenService.Tests.Tables;

namespace TokenService.Tests.SharedSignals;

/// <summary>
/// The stream store's guarantees (<see cref="ISsfStreamStore"/>) through the registry, as two instances would use them:
/// two registries, each with its own store object over the same storage (the memory store: one object; Table Storage:
/// two clients of one Azurite table). Written once, run on memory and on Azurite.
/// </summary>
public abstract class SsfStreamStoreContractTests(SharedSignalsHostFixture fixture)
{
    private readonly string _suffix = Guid.NewGuid().ToString("N")[..12];

    protected FakeTimeProvider Time { get; } = new(new DateTimeOffset(2026, 12, 6, 12, 0, 0, TimeSpan.Zero));

    /// <summary>The transmitter's settings of this test (the stores read them when they build a stream).</summary>
    protected SharedSignalsOptions Ssf { get; } = new() { Enabled = true };

    /// <summary>A receiver of its own per test, so that tests sharing a table never see each other's streams as theirs.</summary>
    protected RegisteredClient Receiver => field ??= new RegisteredClient { ClientId = "api-" + _suffix, Type = ClientType.ResourceServer, AllowedAudiences = ["api://orders-" + _suffix] };

    /// <summary>The store as another instance (or the same one after a restart) sees the same storage.</summary>
    protected abstract ISsfStreamStore NewStore();

    protected SsfStreamRegistry Instance() =>
        new(new OneClient(Receiver), Options.Create(Ssf), NullLogger<SsfStreamRegistry>.Instance, NewStore(), Time);

    [Fact]
    public async Task An_event_queued_by_one_instance_is_polled_through_the_other_and_an_ack_on_either_removes_it()
    {
        var one = Instance();
        var two = Instance();
        var created = (await one.CreateAsync(Receiver, null, null, null, default))!;

        one.SessionsEnded([Session("sid-" + _suffix)], SessionEndReason.AdminLogout, Time.GetUtcNow());
        await one.WhenQueuedAsync();

        var seenByTwo = (await two.FindAsync(created.StreamId, Receiver, default))!;
        var polled = await two.PollAsync(seenByTwo, [], 10, default);
        var entry = Assert.Single(polled.Batch);
        Assert.Equal("sid-" + _suffix, entry.SessionId);
        Assert.Equal(SessionEndReason.AdminLogout, entry.Reason);

        var acknowledged = await one.PollAsync((await one.FindAsync(created.StreamId, Receiver, default))!, [entry.Jti], 10, default);
        Assert.Equal(1, acknowledged.Acknowledged);
        Assert.Empty(acknowledged.Batch);
        Assert.Empty((await two.PollAsync(seenByTwo, [], 10, default)).Batch);
    }

    [Fact]
    public async Task An_access_token_and_a_key_revocation_queued_by_one_instance_are_polled_through_the_other_with_what_they_revoke()
    {
        var one = Instance();
        var created = (await one.CreateAsync(Receiver, null, null, null, default))!;
        var signals = new SsfRevocationSignals(one, new OneClient(Receiver), Time);
        var expires = Time.GetUtcNow().AddMinutes(10);

        // Two changes, each queued once the one before is (their writes are started, not awaited: two changes queued at
        // once are in no set order, only the events of one change are).
        signals.AccessTokenRevoked("jti-" + _suffix, ["api://orders-" + _suffix], expires);
        await one.WhenQueuedAsync();
        signals.SigningKeyRevoked("kid-" + _suffix);
        await one.WhenQueuedAsync();

        var two = Instance();
        var polled = await two.PollAsync((await two.FindAsync(created.StreamId, Receiver, default))!, [], 10, default);
        Assert.Equal([SsfProtocol.AccessTokenRevokedEventType, SsfProtocol.SigningKeyRevokedEventType], polled.Batch.Select(e => e.EventType));
        Assert.Equal("jti-" + _suffix, polled.Batch[0].RevokedId);
        Assert.Equal(expires, polled.Batch[0].RevokedUntil);
        Assert.Equal("kid-" + _suffix, polled.Batch[1].RevokedId);
        Assert.Null(polled.Batch[1].RevokedUntil);
    }

    [Fact]
    public async Task The_bound_keeps_the_newest_events_in_order_and_counts_the_dropped_ones()
    {
        Ssf.MaxEventsPerStream = 3;
        var one = Instance();
        var stream = (await one.CreateAsync(Receiver, null, null, null, default))!;
        for (var i = 0; i < 5; i++)
        {
            Assert.True(await one.EnqueueVerificationAsync(stream, "s" + i, Time.GetUtcNow()));
        }

        var polled = await Instance().PollAsync(stream, [], 10, default);
        Assert.Equal(["s2", "s3", "s4"], polled.Batch.Select(e => e.State));
        Assert.Equal(2, (await Instance().FindAsync(stream.StreamId, Receiver, default))!.Dropped);
    }

    [Fact]
    public async Task A_stream_without_activity_for_the_inactivity_timeout_is_deleted_by_the_cleanup_and_an_active_one_is_kept()
    {
        var one = Instance();
        var idle = (await one.CreateAsync(Receiver, null, null, null, default))!;
        var active = (await one.CreateAsync(Receiver, null, null, null, default))!;
        await one.EnqueueVerificationAsync(idle, "held", Time.GetUtcNow());

        Time.Advance(TimeSpan.FromDays(6));
        await Instance().PollAsync((await one.FindAsync(active.StreamId, Receiver, default))!, [], 10, default);
        Time.Advance(TimeSpan.FromDays(1.5));
        Assert.True(await Instance().PurgeExpiredAsync(Time.GetUtcNow(), default) >= 1);

        var left = await Instance().ListForAsync(Receiver, default);
        Assert.Equal([active.StreamId], left.Select(s => s.StreamId));
        Assert.Equal(0, await NewStore().CountAsync(idle, default)); // its held events went with it
    }

    [Fact]
    public async Task A_push_streams_lease_lets_only_one_of_two_delivery_loops_send_and_each_event_goes_once_in_order()
    {
        var receiver = new PushReceiver(Time);
        var firstAnswer = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        receiver.Answer = async (index, _, _) =>
        {
            if (index == 0)
            {
                await firstAnswer.Task; // the first push hangs until the other loop has had its chance
            }

            return PushHarness.Status(HttpStatusCode.Accepted);
        };
        var one = Instance();
        var two = Instance();
        var stream = (await one.CreateAsync(Receiver, null, null, new SsfPushDelivery(new Uri(PushHarness.Endpoint), PushHarness.Authorization), default))!;
        var states = Enumerable.Range(0, 5).Select(i => "e" + i).ToList();
        foreach (var state in states)
        {
            await one.EnqueueVerificationAsync(stream, state, Time.GetUtcNow());
            Time.Advance(TimeSpan.FromMilliseconds(1));
        }

        using var loopOne = Delivery(one, receiver);
        using var loopTwo = Delivery(two, receiver);
        var passOne = loopOne.DeliverDueAsync(default);
        var passTwo = loopTwo.DeliverDueAsync(default);
        await receiver.NextAsync(); // one loop holds the lease and hangs on its first push
        await Task.WhenAny(passOne, passTwo).WaitAsync(TimeSpan.FromSeconds(10)); // the other found the lease taken
        firstAnswer.SetResult();
        await Task.WhenAll(passOne, passTwo).WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Equal(states, receiver.Received.Select(PushHarness.StateOf));
        Assert.Equal(0, await NewStore().CountAsync(stream, default));
        var after = (await two.FindAsync(stream.StreamId, Receiver, default))!;
        Assert.Null(after.LeaseOwner); // released at the end of the pass
        Assert.NotNull(after.LastDeliveryAt);
    }

    protected SecurityEventTokenSigner Signer => fixture.Host.Services.GetRequiredService<SecurityEventTokenSigner>();

    private SsfPushDeliveryService Delivery(SsfStreamRegistry registry, PushReceiver receiver) =>
        new(registry, Signer, new ReceiverClients(receiver), Options.Create(Ssf), Time, NullLogger<SsfPushDeliveryService>.Instance);

    protected SessionRecord Session(string sid) => new()
    {
        SessionId = sid, UserId = "u", Subject = "u", ClientId = "web", Scope = "a", Audiences = [Receiver.AllowedAudiences[0]], CreatedAt = Time.GetUtcNow(),
        LastActivityAt = Time.GetUtcNow(), IdleExpiresAt = Time.GetUtcNow(), AbsoluteExpiresAt = Time.GetUtcNow(), RefreshTokenHash = "h", RefreshTokenExpiresAt = Time.GetUtcNow(),
        WriteId = "w", PurgeAt = Time.GetUtcNow(),
    };

    protected sealed class OneClient(RegisteredClient client) : IClientStore
    {
        public RegisteredClient? Find(string clientId) => clientId == client.ClientId ? client : null;

        public bool IsAllowedOrigin(string origin) => false;
    }

    private sealed class ReceiverClients(PushReceiver receiver) : IHttpClientFactory
    {
        public HttpClient CreateClient(string name) => new(receiver, disposeHandler: false);
    }
}

public sealed class InMemorySsfStreamStoreTests(SharedSignalsHostFixture fixture) : SsfStreamStoreContractTests(fixture), IClassFixture<SharedSignalsHostFixture>
{
    private readonly InMemorySsfStreamStore _store = new();

    protected override ISsfStreamStore NewStore() => _store;
}

[Collection(AzuriteCollection.Name)]
public sealed class TableSsfStreamStoreTests(AzuriteFixture azurite, SharedSignalsHostFixture fixture) : SsfStreamStoreContractTests(fixture), IClassFixture<SharedSignalsHostFixture>
{
    protected override ISsfStreamStore NewStore() => new TableSsfStreamStore(new TableProvisioner(azurite.CreateClient()), Options.Create(Ssf));

    [Fact]
    public async Task A_restart_keeps_the_streams_and_their_held_events_and_a_poll_after_it_returns_them_as_the_same_sets()
    {
        var before = Instance();
        var stream = (await before.CreateAsync(Receiver, null, "kept", null, default))!;
        before.SessionsEnded([Session("sid-a"), Session("sid-b")], SessionEndReason.Logout, Time.GetUtcNow());
        await before.WhenQueuedAsync();
        var firstPoll = await before.PollAsync(stream, [], 1, default);
        Assert.True(firstPoll.MoreAvailable);
        var signer = Signer;
        var sent = Assert.Single(firstPoll.Batch);
        sent.Set = await signer.SignAsync(stream, sent, default);
        await before.Store.SaveSetAsync(stream, sent, default);

        // A new registry over a new client: what a restarted (or another) instance sees.
        var after = Instance();
        var found = Assert.Single(await after.ListForAsync(Receiver, default));
        Assert.Equal(stream.StreamId, found.StreamId);
        Assert.Equal("kept", found.Description);
        var polled = await after.PollAsync(found, [], 10, default);
        Assert.Equal(["sid-a", "sid-b"], polled.Batch.Select(e => e.SessionId));
        Assert.Equal(sent.Jti, polled.Batch[0].Jti);
        Assert.Equal(sent.Set, polled.Batch[0].Set); // a redelivery is the same SET (RFC 8936 §2.4)
        Assert.Single(polled.Batch.Select(e => e.Txn).Distinct()); // one commit, one txn (SSF 1.0 §4.1.9)
    }

    [Fact]
    public async Task Two_instances_updating_one_stream_keep_both_changes()
    {
        var stream = (await Instance().CreateAsync(Receiver, null, null, null, default))!;
        var storeOne = NewStore();
        var storeTwo = NewStore();
        var changes = Enumerable.Range(0, 8).Select(i => (i % 2 == 0 ? storeOne : storeTwo).UpdateAsync(stream.StreamId, s =>
        {
            s.PushFailures++;
            return true;
        }, default).AsTask());
        await Task.WhenAll(changes);
        Assert.Equal(8, (await NewStore().GetAsync(stream.StreamId, default))!.PushFailures);
    }

    [Fact]
    public async Task A_table_fault_on_a_stream_write_fails_closed_and_leaves_nothing_half_written()
    {
        var transport = new FailingWrites();
        var options = TableStorage.DefaultOptions();
        options.Transport = transport;
        options.Retry.MaxRetries = 0;
        var faulty = new SsfStreamRegistry(new OneClient(Receiver), Options.Create(Ssf), NullLogger<SsfStreamRegistry>.Instance,
            new TableSsfStreamStore(new TableProvisioner(azurite.CreateClient(options)), Options.Create(Ssf)), Time);
        var stream = (await Instance().CreateAsync(Receiver, null, "before", null, default))!;
        await faulty.ListForAsync(Receiver, default); // the tables exist: only writes fail from here

        transport.Fail = true;
        await Assert.ThrowsAsync<DependencyUnavailableException>(async () => await faulty.CreateAsync(Receiver, null, "never", null, default));
        await Assert.ThrowsAsync<DependencyUnavailableException>(async () => await faulty.UpdateAsync(stream, s => s.Description = "changed", default));
        await Assert.ThrowsAsync<DependencyUnavailableException>(async () => await faulty.EnqueueVerificationAsync(stream, "lost", Time.GetUtcNow()));

        var left = Assert.Single(await Instance().ListForAsync(Receiver, default));
        Assert.Equal("before", left.Description);
        Assert.Equal(0, await NewStore().CountAsync(stream, default));
    }

    /// <summary>Answers 503 to every write (anything but a GET) without sending it, while on.</summary>
    private sealed class FailingWrites : HttpPipelineTransport
    {
        private readonly HttpClientTransport _inner = new();

        public volatile bool Fail;

        public override Request CreateRequest() => _inner.CreateRequest();

        public override void Process(HttpMessage message) => ProcessAsync(message).AsTask().GetAwaiter().GetResult();

        public override async ValueTask ProcessAsync(HttpMessage message)
        {
            if (Fail && message.Request.Method != RequestMethod.Get)
            {
                message.Response = new InjectedResponse(503);
                return;
            }

            await _inner.ProcessAsync(message);
        }
    }
}
