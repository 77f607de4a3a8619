using System.Collections.Concurrent;
using System.Net;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TokenService.Configuration;
using TokenService.Http;

namespace TokenService.Clients;

/// <summary>
/// Back-off after failed client authentication (OWASP ASVS V2.2.1 anti-automation): per registered
/// client id and source address (an IPv4 address or an IPv6 /64), the first <see cref="FreeFailures"/> consecutive
/// failures answer 401 at once; each further one opens a refusal window that doubles (1 s, 2 s, 4 s, … up to
/// <see cref="RateLimitOptions.FailedAuthBackoffMax"/>). Inside a window every request of that client id from that
/// address is refused with 429 and Retry-After without its secret being compared, so guessing runs at about one try
/// per window instead of thousands a second; nothing waits on the request thread. A success resets the count, and a
/// count is forgotten <see cref="ForgetAfter"/> after its last failure.
/// <para>
/// Keyed by client id and address, not by client id alone: a back-off per client id would let anyone who knows a
/// client id keep that client locked out with one wrong guess per window (a lockout denial of service), while this
/// way each guessing address is slowed on its own. Only registered, non-public client ids are tracked (an unknown id
/// has no secret to guess, and must not grow the table).
/// </para>
/// <para>
/// Past <see cref="MaxTracked"/> addresses at once, further addresses share one overflow entry per
/// client id, which keeps guessers slowed however many addresses they hold, but never applies to an address in good
/// standing: one from which that client id authenticated successfully (at most <see cref="MaxGoodAddresses"/> per
/// client id, the least recently successful dropped first). Why not evict the least recently used counts instead: an
/// attacker with more addresses than the table holds (an IPv6 /44 is a million /64s) would cycle through them and have
/// every count evicted before its address came round again, so every guess would be free. And why good standing cannot
/// be evicted cheaply: it is only written by a success, which takes the client's secret, so failures from any number of
/// addresses never touch it, and its size is bounded by the registered clients, not by the addresses seen. A good
/// address's own failures (a rotated secret on the client's server) are still counted on an entry of its own. What
/// this leaves: an address that never authenticated before (a new server of the client) shares the overflow window
/// while an attack fills the table, at most <see cref="RateLimitOptions.FailedAuthBackoffMax"/> at a time.
/// </para>
/// </summary>
public sealed partial class ClientAuthenticationBackoff(IOptions<RateLimitOptions> options, TimeProvider time, ILogger<ClientAuthenticationBackoff> logger)
{
    /// <summary>Consecutive failures answered with 401 alone (a mistyped or rotated secret) before the first window.</summary>
    public const int FreeFailures = 4;

    /// <summary>The first refusal window; each further failure doubles it.</summary>
    public static readonly TimeSpan FirstWindow = TimeSpan.FromSeconds(1);

    /// <summary>How long after the last failure a count is forgotten.</summary>
    public static readonly TimeSpan ForgetAfter = TimeSpan.FromMinutes(15);

    /// <summary>Most (client id, address) pairs tracked at once before addresses share an entry.</summary>
    public const int MaxTracked = 100_000;

    /// <summary>Most addresses in good standing remembered per client id (its servers' egress addresses).</summary>
    public const int MaxGoodAddresses = 1024;

    /// <summary>How stale a good-standing stamp may get before a success writes it again (no write per request).</summary>
    private static readonly TimeSpan GoodStandingRefresh = TimeSpan.FromMinutes(1);

    private static readonly UInt128 OverflowAddress = UInt128.MaxValue - 1;

    private readonly TimeSpan _max = options.Value.Enabled ? options.Value.FailedAuthBackoffMax : TimeSpan.Zero;
    private readonly ConcurrentDictionary<Key, State> _states = new();

    // Client id → address → UTC ticks of its last success. Only registered clients that authenticated reach it.
    private readonly ConcurrentDictionary<string, ConcurrentDictionary<UInt128, long>> _good = new(StringComparer.Ordinal);
    private long _lastPruneTicks;
    private volatile bool _overflowed;

    private bool IsOn => _max > TimeSpan.Zero;

    /// <summary>The time left in the refusal window of <paramref name="client"/> at <paramref name="address"/>, or null.</summary>
    public TimeSpan? RetryAfter(RegisteredClient client, IPAddress? address)
    {
        // Lock-free lookups only: this runs for every authentication of a client with a secret (ConcurrentDictionary's
        // IsEmpty would take every lock when the table is empty, the usual case).
        if (!IsOn || !TryFind(client, address, out var state))
        {
            return null;
        }

        lock (state)
        {
            var left = state.BlockedUntil - time.GetUtcNow();
            return left > TimeSpan.Zero ? left : null;
        }
    }

    /// <summary>Records a failed authentication of a registered client id; may open (or lengthen) a window.</summary>
    public void Failed(RegisteredClient client, IPAddress? address)
    {
        if (!IsOn || client.IsPublic)
        {
            return;
        }

        var now = time.GetUtcNow();
        var addressKey = RequestRateLimiter.AddressKey(address);
        var key = new Key(client.ClientId, addressKey);
        if (!_states.TryGetValue(key, out var state))
        {
            if (_states.Count >= MaxTracked)
            {
                Prune(now);
                // An address in good standing keeps an entry of its own even in a full table (bounded by
                // MaxGoodAddresses per registered client): it is never judged by the guessers' shared entry.
                if (_states.Count >= MaxTracked && !IsInGoodStanding(client.ClientId, addressKey))
                {
                    key = new Key(client.ClientId, OverflowAddress);
                    _overflowed = true;
                }
            }

            state = _states.GetOrAdd(key, static _ => new State());
        }

        int failures;
        TimeSpan window;
        lock (state)
        {
            if (now - state.LastFailure > ForgetAfter)
            {
                state.Failures = 0;
            }

            state.LastFailure = now;
            failures = ++state.Failures;
            if (failures <= FreeFailures)
            {
                return;
            }

            var doublings = Math.Min(failures - FreeFailures - 1, 30);
            window = TimeSpan.FromTicks(Math.Min(FirstWindow.Ticks << doublings, _max.Ticks));
            state.BlockedUntil = now + window;
        }

        LogBackoff(logger, client.ClientId, failures, (int)Math.Ceiling(window.TotalSeconds));
    }

    /// <summary>
    /// A successful authentication ends the count of that client id at that address and puts the address in good
    /// standing for that client id (the overflow entry no longer applies to it).
    /// </summary>
    public void Succeeded(RegisteredClient client, IPAddress? address)
    {
        if (!IsOn)
        {
            return;
        }

        var addressKey = RequestRateLimiter.AddressKey(address);
        var key = new Key(client.ClientId, addressKey);
        if (_states.ContainsKey(key))
        {
            _states.TryRemove(key, out _);
        }

        RememberGoodStanding(client.ClientId, addressKey);
    }

    private bool TryFind(RegisteredClient client, IPAddress? address, out State state)
    {
        var addressKey = RequestRateLimiter.AddressKey(address);
        return _states.TryGetValue(new Key(client.ClientId, addressKey), out state!)
            || (_overflowed && !IsInGoodStanding(client.ClientId, addressKey) && _states.TryGetValue(new Key(client.ClientId, OverflowAddress), out state!));
    }

    private bool IsInGoodStanding(string clientId, UInt128 address) =>
        _good.TryGetValue(clientId, out var addresses) && addresses.ContainsKey(address);

    /// <summary>
    /// Stamps <paramref name="address"/> as in good standing for <paramref name="clientId"/>. Lock-free and without a
    /// write when the stamp is recent (every successful authentication comes here); a new address in a full set drops the
    /// least recently successful one, so only the client's own successes can push its addresses out.
    /// </summary>
    private void RememberGoodStanding(string clientId, UInt128 address)
    {
        var now = time.GetUtcNow().UtcTicks;
        if (!_good.TryGetValue(clientId, out var addresses))
        {
            addresses = _good.GetOrAdd(clientId, static _ => new ConcurrentDictionary<UInt128, long>());
        }

        if (addresses.TryGetValue(address, out var stamp))
        {
            if (now - stamp >= GoodStandingRefresh.Ticks)
            {
                addresses[address] = now;
            }

            return;
        }

        lock (addresses)
        {
            while (addresses.Count >= MaxGoodAddresses)
            {
                var oldest = addresses.MinBy(static pair => pair.Value).Key;
                addresses.TryRemove(oldest, out _);
            }

            addresses[address] = now;
        }
    }

    /// <summary>Drops forgotten counts, at most once a minute (a full table must not make every failure a full scan).</summary>
    private void Prune(DateTimeOffset now)
    {
        var last = Interlocked.Read(ref _lastPruneTicks);
        if (now.UtcTicks - last < TimeSpan.TicksPerMinute || Interlocked.CompareExchange(ref _lastPruneTicks, now.UtcTicks, last) != last)
        {
            return;
        }

        foreach (var (key, state) in _states)
        {
            bool forgotten;
            lock (state)
            {
                forgotten = now - state.LastFailure > ForgetAfter && state.BlockedUntil <= now;
            }

            if (forgotten)
            {
                _states.TryRemove(key, out _);
            }
        }
    }

    private readonly record struct Key(string ClientId, UInt128 Address);

    private sealed class State
    {
        public int Failures;
        public DateTimeOffset LastFailure = DateTimeOffset.MinValue;
        public DateTimeOffset BlockedUntil = DateTimeOffset.MinValue;
    }

    [LoggerMessage(EventId = 1201, Level = LogLevel.Warning,
        Message = "Client {ClientId} failed authentication {Failures} times in a row from one address; that address is refused for {Seconds} s.")]
    private static partial void LogBackoff(ILogger logger, string clientId, int failures, int seconds);
}
