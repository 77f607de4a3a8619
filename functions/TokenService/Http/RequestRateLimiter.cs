using System.Buffers.Binary;
using System.Net;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;
using TokenService.Clients;
using TokenService.Configuration;

namespace TokenService.Http;

/// <summary>The routes that have request limits; each has budgets of its own.</summary>
public enum RateLimitedRoute : byte
{
    Token = 1,
    Revocation,
    Introspection,
    Management,
    IdpEvents,
    SsfEvents,

    /// <summary>The Shared Signals transmitter's stream management and poll routes (<c>ssf/…</c>).</summary>
    SharedSignals,
}

/// <summary>
/// Request limits of the token, revocation, introspection, management and event routes, in the
/// shared endpoint code so that both hosts have them: a <see cref="PartitionedRateLimiter{TResource}"/> of
/// <see cref="TokenBucketRateLimiter"/>s, partitioned by route and either source address
/// (<see cref="ConnectionInfo.RemoteIpAddress"/>; an IPv6 client counts by its /64, which one subscriber holds) or
/// authenticated client id. A bucket holds one minute's worth of requests and refills a sixth of it every 10 s.
/// Nothing waits: a request over the limit is refused at once with 429 and Retry-After (RFC 6585 §4, RFC 9110
/// §10.2.3). No allocation on the hot path beyond the lease, which for a request that passes is the limiter's shared
/// instance: the partition key is a struct of the address bytes and the registered client's own id string, and the
/// partitions are looked up without a closure (see <see cref="TokenBucketPartitions"/>). Only a new partition or a
/// refusal allocates.
/// </summary>
public sealed class RequestRateLimiter : IDisposable, IAsyncDisposable
{
    /// <summary>Refill step: a sixth of the per-minute budget every 10 s (one token per 60/limit s below 6 a minute).</summary>
    internal static readonly TimeSpan RefillPeriod = TimeSpan.FromSeconds(10);

    private static readonly UInt128 UnknownAddress = UInt128.MaxValue;
    private const ulong IPv4Tag = 1UL << 32;

    private readonly PartitionedRateLimiter<PartitionKey>? _limiter;
    private readonly TokenBucketRateLimiterOptions? _perAddress;
    private readonly TokenBucketRateLimiterOptions? _perClient;
    private readonly Func<PartitionKey, TokenBucketRateLimiter> _factory;

    public RequestRateLimiter(IOptions<RateLimitOptions> options)
    {
        var o = options.Value;
        _factory = key => new TokenBucketRateLimiter(key.ClientId is null ? _perAddress! : _perClient!);
        if (!o.Enabled || (o.PerIpPerMinute == 0 && o.PerClientPerMinute == 0))
        {
            return;
        }

        _perAddress = o.PerIpPerMinute > 0 ? PerMinute(o.PerIpPerMinute) : null;
        _perClient = o.PerClientPerMinute > 0 ? PerMinute(o.PerClientPerMinute) : null;
        _limiter = new TokenBucketPartitions(_factory);
    }

    /// <summary>
    /// Charges one request to the source address of <paramref name="context"/> on <paramref name="route"/>. False, with
    /// the delay to announce, when the address has spent its budget.
    /// </summary>
    public bool TryAcquireForAddress(RateLimitedRoute route, HttpContext context, out TimeSpan retryAfter)
    {
        retryAfter = TimeSpan.Zero;
        return _perAddress is null || TryAcquire(new PartitionKey(route, AddressKey(context.Connection.RemoteIpAddress), null), out retryAfter);
    }

    /// <summary>Charges one request to an authenticated, registered client on <paramref name="route"/>.</summary>
    public bool TryAcquireForClient(RateLimitedRoute route, RegisteredClient client, out TimeSpan retryAfter)
    {
        retryAfter = TimeSpan.Zero;
        // The registered client's own id string: the key holds no per-request string, and no partition is ever made
        // for a client id that is not registered (an attacker cannot grow the table with made-up ids).
        return _perClient is null || TryAcquire(new PartitionKey(route, UInt128.Zero, client.ClientId), out retryAfter);
    }

    private bool TryAcquire(PartitionKey key, out TimeSpan retryAfter)
    {
        using var lease = _limiter!.AttemptAcquire(key);
        if (lease.IsAcquired)
        {
            retryAfter = TimeSpan.Zero;
            return true;
        }

        retryAfter = lease.TryGetMetadata(MetadataName.RetryAfter, out var delay) ? delay : RefillPeriod;
        return false;
    }

    /// <summary>
    /// The partition of an address without allocating: an IPv4 address (also when a dual-mode socket reports it as
    /// <c>::ffff:a.b.c.d</c>) by itself, an IPv6 address by its /64 prefix (RFC 4291 §2.5.4: the interface id is the
    /// subscriber's to choose, so rotating it must not buy a fresh budget). No address (an in-process host): one
    /// shared partition.
    /// </summary>
    internal static UInt128 AddressKey(IPAddress? address)
    {
        if (address is null)
        {
            return UnknownAddress;
        }

        Span<byte> bytes = stackalloc byte[16];
        if (!address.TryWriteBytes(bytes, out var written))
        {
            return UnknownAddress;
        }

        if (written == 4)
        {
            return new UInt128(0, IPv4Tag | BinaryPrimitives.ReadUInt32BigEndian(bytes));
        }

        if (address.IsIPv4MappedToIPv6)
        {
            return new UInt128(0, IPv4Tag | BinaryPrimitives.ReadUInt32BigEndian(bytes[12..]));
        }

        return new UInt128(BinaryPrimitives.ReadUInt64BigEndian(bytes), 0);
    }

    internal static TokenBucketRateLimiterOptions PerMinute(int limit) => new()
    {
        TokenLimit = limit,
        TokensPerPeriod = limit >= 6 ? (limit + 5) / 6 : 1,
        ReplenishmentPeriod = limit >= 6 ? RefillPeriod : TimeSpan.FromSeconds(60.0 / limit),
        QueueLimit = 0,
        // TokenBucketPartitions replenishes every bucket from one timer (as the library's own partitioned limiter does);
        // one timer per bucket would be one per address.
        AutoReplenishment = false,
    };

    public void Dispose() => _limiter?.Dispose();

    public ValueTask DisposeAsync() => _limiter?.DisposeAsync() ?? ValueTask.CompletedTask;

    /// <summary>Route plus either an address partition or a registered client id; equality without boxing.</summary>
    internal readonly struct PartitionKey(RateLimitedRoute route, UInt128 address, string? clientId) : IEquatable<PartitionKey>
    {
        public RateLimitedRoute Route { get; } = route;
        public UInt128 Address { get; } = address;
        public string? ClientId { get; } = clientId;

        public bool Equals(PartitionKey other) => Route == other.Route && Address == other.Address && string.Equals(ClientId, other.ClientId, StringComparison.Ordinal);

        public override bool Equals(object? obj) => obj is PartitionKey other && Equals(other);

        public override int GetHashCode() => HashCode.Combine(Route, Address, ClientId);
    }

    /// <summary>
    /// A partitioned limiter over one <see cref="TokenBucketRateLimiter"/> per key, held in a concurrent dictionary. The
    /// library's own (<see cref="PartitionedRateLimiter.Create{TResource, TPartitionKey}"/>) allocates a closure on every
    /// acquisition and takes one global lock; this one looks a bucket up with a cached factory delegate and no lock.
    /// One timer, every <see cref="Tick"/>, replenishes the buckets and drops those idle (full) for
    /// <see cref="IdleLimit"/>, which bounds memory by the partitions active in about a minute and a half. The buckets
    /// keep time on the monotonic clock (System.Threading.RateLimiting takes no <see cref="TimeProvider"/>), so the timer
    /// does too.
    /// </summary>
    internal sealed class TokenBucketPartitions(Func<PartitionKey, TokenBucketRateLimiter> factory) : PartitionedRateLimiter<PartitionKey>
    {
        internal static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(250);
        internal static readonly TimeSpan IdleLimit = TimeSpan.FromSeconds(30);

        private readonly System.Collections.Concurrent.ConcurrentDictionary<PartitionKey, TokenBucketRateLimiter> _buckets = new();
        private readonly Func<PartitionKey, TokenBucketRateLimiter> _factory = factory;
        private ITimer? _timer;
        private int _ticking;

        internal int Count => _buckets.Count;

        public override RateLimiterStatistics? GetStatistics(PartitionKey resource) => Bucket(resource).GetStatistics();

        protected override RateLimitLease AttemptAcquireCore(PartitionKey resource, int permitCount) => Bucket(resource).AttemptAcquire(permitCount);

        protected override ValueTask<RateLimitLease> AcquireAsyncCore(PartitionKey resource, int permitCount, CancellationToken cancellationToken) =>
            Bucket(resource).AcquireAsync(permitCount, cancellationToken);

        private TokenBucketRateLimiter Bucket(PartitionKey key)
        {
            if (_buckets.TryGetValue(key, out var bucket))
            {
                return bucket;
            }

            _timer ??= StartTimer();
            return _buckets.GetOrAdd(key, _factory);
        }

        private ITimer StartTimer()
        {
            var timer = TimeProvider.System.CreateTimer(static state => ((TokenBucketPartitions)state!).Replenish(), this, Tick, Tick);
            if (Interlocked.CompareExchange(ref _timer, timer, null) is { } other)
            {
                timer.Dispose();
                return other;
            }

            return timer;
        }

        /// <summary>
        /// Replenishes every bucket and drops idle ones. A dropped bucket is not disposed: a request may have just looked it
        /// up (it then acquires from a bucket that was full anyway), and a bucket without auto-replenishment holds no timer.
        /// </summary>
        private void Replenish()
        {
            if (Interlocked.Exchange(ref _ticking, 1) == 1)
            {
                return;
            }

            try
            {
                foreach (var (key, bucket) in _buckets)
                {
                    if (bucket.IdleDuration > IdleLimit)
                    {
                        _buckets.TryRemove(new KeyValuePair<PartitionKey, TokenBucketRateLimiter>(key, bucket));
                    }
                    else
                    {
                        bucket.TryReplenish();
                    }
                }
            }
            finally
            {
                Volatile.Write(ref _ticking, 0);
            }
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _timer?.Dispose();
                foreach (var bucket in _buckets.Values)
                {
                    bucket.Dispose();
                }

                _buckets.Clear();
            }

            base.Dispose(disposing);
        }
    }
}
