using System.Diagnostics.CodeAnalysis;
using Microsoft.Extensions.Caching.Memory;

namespace TokenService.Sessions;

/// <summary>
/// The state of the sessions this instance wrote last, each with the ETag the store gave it, so that the next refresh of
/// such a session writes its rotation at once (<c>If-Match</c> that ETag) instead of reading the session first: one
/// Table operation instead of two.
/// </summary>
/// <remarks>
/// Never trusted on its own: <see cref="SessionService"/> takes a cached state only where it leads to a write (a
/// rotation of its current refresh token, for its client and key, before any end), and that write's <c>If-Match</c>
/// fails if anything changed the session since this instance wrote it (a revocation, a racing refresh, the purge). The
/// refresh then reads the session and decides again on what is stored, so reuse detection, revocation and expiry answer
/// exactly as without the cache; every refusal is decided on a read. With several instances, a session refreshed
/// elsewhere since comes back with a token newer than the cached one, which is read as before (two operations): only a
/// change that leaves the current token as it was (an end, a race) costs the failed write, a third operation.
/// Bounded: at most <see cref="Capacity"/> sessions (about 1 KB each, 5 KB with 32 retired hashes), held by Microsoft.Extensions.Caching.Memory's
/// size limit (a session past it is not kept, and a compaction drops the least recently used quarter).
/// </remarks>
public sealed class SessionStateCache : IDisposable
{
    /// <summary>Sessions kept at most per instance.</summary>
    internal const int Capacity = 10_000;

    private static readonly MemoryCacheEntryOptions OneEntry = new() { Size = 1 };

    private readonly MemoryCache _entries = new(new MemoryCacheOptions { SizeLimit = Capacity, CompactionPercentage = 0.25 });

    /// <summary>The state of <paramref name="sessionId"/> this instance stored last, when it is still held.</summary>
    public bool TryGet(string sessionId, [NotNullWhen(true)] out SessionRecord? session) => _entries.TryGetValue(sessionId, out session);

    /// <summary>Remembers <paramref name="stored"/> as the store holds it now; a record without an ETag is not kept.</summary>
    public void Set(SessionRecord stored)
    {
        if (stored.ETag is null)
        {
            Remove(stored.SessionId);
            return;
        }

        _entries.Set(stored.SessionId, stored, OneEntry);
    }

    public void Remove(string sessionId) => _entries.Remove(sessionId);

    /// <summary>Sessions held (for tests and diagnostics).</summary>
    internal int Count => _entries.Count;

    public void Dispose() => _entries.Dispose();
}
