using System.Collections.Concurrent;
using System.Net;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TokenService.Configuration;
using TokenService.Http;

namespace TokenService.Clients;

/// <summary>
/// Back-off after failed client authentication (issue 20, item 6; OWASP ASVS V2.2.1 anti-automation): per registered
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
/// has no secret to guess, and must not grow the table); past <see cref="MaxTracked"/> addresses at once, further
/// addresses share one entry per client id, which fails closed for the guessers and the client alike.
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

    private static readonly UInt128 OverflowAddress = UInt128.MaxValue - 1;

    private readonly TimeSpan _max = options.Value.Enabled ? options.Value.FailedAuthBackoffMax : TimeSpan.Zero;
    private readonly ConcurrentDictionary<Key, State> _states = new();
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
        var key = new Key(client.ClientId, RequestRateLimiter.AddressKey(address));
        if (!_states.TryGetValue(key, out var state))
        {
            if (_states.Count >= MaxTracked)
            {
                Prune(now);
                if (_states.Count >= MaxTracked)
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

    /// <summary>A successful authentication ends the count of that client id at that address.</summary>
    public void Succeeded(RegisteredClient client, IPAddress? address)
    {
        var key = new Key(client.ClientId, RequestRateLimiter.AddressKey(address));
        if (IsOn && _states.ContainsKey(key))
        {
            _states.TryRemove(key, out _);
        }
    }

    private bool TryFind(RegisteredClient client, IPAddress? address, out State state) =>
        _states.TryGetValue(new Key(client.ClientId, RequestRateLimiter.AddressKey(address)), out state!)
        || (_overflowed && _states.TryGetValue(new Key(client.ClientId, OverflowAddress), out state!));

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
