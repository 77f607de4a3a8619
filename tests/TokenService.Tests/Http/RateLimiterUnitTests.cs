using System.Net;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using TokenService.Clients;
using TokenService.Configuration;
using TokenService.Http;

namespace TokenService.Tests.Http;

/// <summary>The request limiter and the authentication back-off on their own: partitions, the hot path, per-address keys.</summary>
public sealed class RateLimiterUnitTests
{
    private static readonly RegisteredClient Web = new() { ClientId = "web", Type = ClientType.Confidential };

    [Fact]
    public void A_request_that_passes_allocates_nothing_in_the_limiter()
    {
        using var limiter = new RequestRateLimiter(Options.Create(new RateLimitOptions { PerIpPerMinute = 1_000_000, PerClientPerMinute = 1_000_000 }));
        var context = new DefaultHttpContext();
        context.Connection.RemoteIpAddress = IPAddress.Parse("2001:db8:1:2:3:4:5:6");
        // The first calls create the partitions (that allocates, once per partition) and warm the code up.
        const int Calls = 10_000;
        for (var i = 0; i < 1000; i++)
        {
            Assert.True(limiter.TryAcquireForAddress(RateLimitedRoute.Token, context, out _));
            Assert.True(limiter.TryAcquireForClient(RateLimitedRoute.Token, Web, out _));
        }

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < Calls; i++)
        {
            Assert.True(limiter.TryAcquireForAddress(RateLimitedRoute.Token, context, out _));
            Assert.True(limiter.TryAcquireForClient(RateLimitedRoute.Token, Web, out _));
        }

        // Any allocation per call would be at least 24 bytes a call; what is left is one-off runtime work (tiered JIT).
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated < Calls, $"{allocated} bytes for {2 * Calls} acquisitions");
    }

    [Fact]
    public void Addresses_are_partitioned_by_ipv4_address_and_ipv6_slash_64()
    {
        static UInt128 Key(string address) => RequestRateLimiter.AddressKey(IPAddress.Parse(address));

        Assert.Equal(Key("192.0.2.7"), Key("::ffff:192.0.2.7"));
        Assert.NotEqual(Key("192.0.2.7"), Key("192.0.2.8"));
        Assert.Equal(Key("2001:db8:1:2::1"), Key("2001:db8:1:2:ffff:ffff:ffff:ffff"));
        Assert.NotEqual(Key("2001:db8:1:2::1"), Key("2001:db8:1:3::1"));
        Assert.NotEqual(Key("0.0.0.0"), RequestRateLimiter.AddressKey(null));
    }

    [Fact]
    public void The_limit_counts_per_route_and_per_partition_and_says_when_to_retry()
    {
        using var limiter = new RequestRateLimiter(Options.Create(new RateLimitOptions { PerIpPerMinute = 60, PerClientPerMinute = 2 }));
        var a = new DefaultHttpContext();
        a.Connection.RemoteIpAddress = IPAddress.Parse("192.0.2.1");
        var b = new DefaultHttpContext();
        b.Connection.RemoteIpAddress = IPAddress.Parse("192.0.2.2");
        for (var i = 0; i < 60; i++)
        {
            Assert.True(limiter.TryAcquireForAddress(RateLimitedRoute.Token, a, out _));
        }

        Assert.False(limiter.TryAcquireForAddress(RateLimitedRoute.Token, a, out var retryAfter));
        Assert.Equal(RequestRateLimiter.RefillPeriod, retryAfter);
        Assert.True(limiter.TryAcquireForAddress(RateLimitedRoute.Revocation, a, out _));
        Assert.True(limiter.TryAcquireForAddress(RateLimitedRoute.Token, b, out _));

        Assert.True(limiter.TryAcquireForClient(RateLimitedRoute.Introspection, Web, out _));
        Assert.True(limiter.TryAcquireForClient(RateLimitedRoute.Introspection, Web, out _));
        Assert.False(limiter.TryAcquireForClient(RateLimitedRoute.Introspection, Web, out retryAfter));
        Assert.Equal(TimeSpan.FromSeconds(30), retryAfter);
    }

    [Fact]
    public void The_back_off_is_per_client_id_and_address_doubles_and_is_forgotten()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var backoff = new ClientAuthenticationBackoff(Options.Create(new RateLimitOptions()), time, NullLogger<ClientAuthenticationBackoff>.Instance);
        var guesser = IPAddress.Parse("192.0.2.66");
        var owner = IPAddress.Parse("192.0.2.10");
        for (var i = 0; i < ClientAuthenticationBackoff.FreeFailures; i++)
        {
            backoff.Failed(Web, guesser);
            Assert.Null(backoff.RetryAfter(Web, guesser));
        }

        var windows = new List<TimeSpan>();
        for (var i = 0; i < 9; i++)
        {
            backoff.Failed(Web, guesser);
            var window = backoff.RetryAfter(Web, guesser)!.Value;
            windows.Add(window);
            time.Advance(window);
        }

        Assert.Equal([1, 2, 4, 8, 16, 32, 60, 60, 60], windows.Select(w => (int)w.TotalSeconds));
        Assert.Null(backoff.RetryAfter(Web, owner));
        Assert.Null(backoff.RetryAfter(new RegisteredClient { ClientId = "other", Type = ClientType.Confidential }, guesser));

        // A public client has no secret to guess: never tracked.
        var spa = new RegisteredClient { ClientId = "spa", Type = ClientType.Spa };
        for (var i = 0; i < 10; i++)
        {
            backoff.Failed(spa, guesser);
        }

        Assert.Null(backoff.RetryAfter(spa, guesser));

        // Quiet for longer than ForgetAfter: the count starts again.
        time.Advance(ClientAuthenticationBackoff.ForgetAfter + TimeSpan.FromSeconds(1));
        backoff.Failed(Web, guesser);
        Assert.Null(backoff.RetryAfter(Web, guesser));
    }

    [Fact]
    public void A_full_back_off_table_still_slows_new_guessing_addresses_but_never_refuses_an_address_that_authenticated_before()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var backoff = new ClientAuthenticationBackoff(Options.Create(new RateLimitOptions()), time, NullLogger<ClientAuthenticationBackoff>.Instance);
        var server = IPAddress.Parse("198.51.100.10");
        backoff.Succeeded(Web, server);

        // An attacker sprays one failure from each of MaxTracked addresses (IPv6 /64s), filling the table.
        Span<byte> bytes = stackalloc byte[16];
        for (var i = 0; i < ClientAuthenticationBackoff.MaxTracked; i++)
        {
            backoff.Failed(Web, Sprayed(i, bytes));
        }

        // Addresses beyond the table share one entry, which still opens a window for every untracked guesser...
        for (var i = 0; i <= ClientAuthenticationBackoff.FreeFailures; i++)
        {
            backoff.Failed(Web, Sprayed(ClientAuthenticationBackoff.MaxTracked + i, bytes));
        }

        Assert.NotNull(backoff.RetryAfter(Web, Sprayed(ClientAuthenticationBackoff.MaxTracked + 100, bytes)));
        Assert.NotNull(backoff.RetryAfter(Web, IPAddress.Parse("203.0.113.99")));

        // ...but not for the client's own server, which authenticated before, while the spray goes on.
        for (var minute = 0; minute < 5; minute++)
        {
            time.Advance(TimeSpan.FromMinutes(1));
            backoff.Failed(Web, Sprayed(ClientAuthenticationBackoff.MaxTracked + 1000 + minute, bytes));
            Assert.Null(backoff.RetryAfter(Web, server));
            backoff.Succeeded(Web, server);
        }

        // The server's own failures (a rotated secret) are still counted on an entry of its own, not the shared one.
        for (var i = 0; i <= ClientAuthenticationBackoff.FreeFailures; i++)
        {
            backoff.Failed(Web, server);
        }

        Assert.Equal(ClientAuthenticationBackoff.FirstWindow, backoff.RetryAfter(Web, server));
    }

    [Fact]
    public void Good_standing_is_bounded_per_client_and_only_that_clients_successes_displace_it()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var backoff = new ClientAuthenticationBackoff(Options.Create(new RateLimitOptions()), time, NullLogger<ClientAuthenticationBackoff>.Instance);
        var other = new RegisteredClient { ClientId = "other", Type = ClientType.Confidential };
        var server = IPAddress.Parse("198.51.100.10");
        backoff.Succeeded(Web, server);
        Span<byte> bytes = stackalloc byte[16];
        for (var i = 0; i < ClientAuthenticationBackoff.MaxTracked + ClientAuthenticationBackoff.FreeFailures + 1; i++)
        {
            backoff.Failed(Web, Sprayed(i, bytes));
        }

        // Another registered client succeeding from many addresses fills its own set, not Web's.
        for (var i = 0; i < 2 * ClientAuthenticationBackoff.MaxGoodAddresses; i++)
        {
            time.Advance(TimeSpan.FromMilliseconds(100));
            backoff.Succeeded(other, Sprayed(1_000_000 + i, bytes));
        }

        Assert.Null(backoff.RetryAfter(Web, server));

        // Web's own successes from MaxGoodAddresses newer addresses displace the least recent one: memory stays bounded.
        for (var i = 0; i < ClientAuthenticationBackoff.MaxGoodAddresses; i++)
        {
            time.Advance(TimeSpan.FromMilliseconds(100));
            backoff.Succeeded(Web, Sprayed(2_000_000 + i, bytes));
        }

        for (var i = 0; i <= ClientAuthenticationBackoff.FreeFailures; i++)
        {
            backoff.Failed(Web, Sprayed(3_000_000 + i, bytes));
        }

        Assert.NotNull(backoff.RetryAfter(Web, server));
        Assert.Null(backoff.RetryAfter(Web, Sprayed(2_000_000, bytes)));
    }

    [Fact]
    public void One_client_at_one_vaults_sign_rate_is_never_refused_by_the_default_per_client_limit()
    {
        // The designed rate (docs/capacity.md): one Premium vault's documented sign budget, 2,000 per 10 s, which is
        // what the vault limiter is configured to by default; one backend-for-frontend may carry all of it.
        var keys = new KeysOptions();
        var perSecond = (int)(keys.SignsPerWindow / keys.SignWindow.TotalSeconds);
        var defaults = new RateLimitOptions();

        // The limiter as built: with no refill at all, a whole minute at the designed rate fits the client's bucket.
        using (var limiter = new RequestRateLimiter(Options.Create(defaults)))
        {
            for (var i = 0; i < 60 * perSecond; i++)
            {
                Assert.True(limiter.TryAcquireForClient(RateLimitedRoute.Token, Web, out _), $"request {i} of the first minute was refused");
            }
        }

        // Sustained, for five simulated minutes on a fake clock: the bucket's refill (its options as the limiter builds
        // them, one refill per period as TokenBucketRateLimiter does) keeps up with the designed rate. The library bucket
        // keeps time on the monotonic clock, so its refill is driven here from the options rather than run for minutes.
        var bucket = RequestRateLimiter.PerMinute(defaults.PerClientPerMinute);
        var time = new FakeTimeProvider(new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var tokens = bucket.TokenLimit;
        using var refill = time.CreateTimer(_ => tokens = Math.Min(bucket.TokenLimit, tokens + bucket.TokensPerPeriod), null, bucket.ReplenishmentPeriod, bucket.ReplenishmentPeriod);
        for (var second = 0; second < 5 * 60; second++)
        {
            tokens -= perSecond;
            Assert.True(tokens >= 0, $"the client would get 429 after {second} s at {perSecond} requests a second");
            time.Advance(TimeSpan.FromSeconds(1));
        }
    }

    /// <summary>The i-th address of a spray: an IPv6 /64 of its own (the back-off counts an IPv6 client by its /64).</summary>
    private static IPAddress Sprayed(int i, Span<byte> bytes)
    {
        bytes.Clear();
        bytes[0] = 0x20;
        bytes[1] = 0x01;
        bytes[2] = 0x0d;
        bytes[3] = 0xb8;
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(bytes[4..8], i);
        return new IPAddress(bytes);
    }
}
