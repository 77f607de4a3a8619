using System.Diagnostics.CodeAnalysis;
using Microsoft.Extensions.Caching.Memory;

namespace TokenService.Sessions;

/// <summary>
/// The state of the sessions this instance wrote last, each with the ETag the store gave it, so that the next refresh of
/// such a session writes its rotation at once (<c>If-Match</c> that ETag) instead of reading the session first: one
/// Table operation instead of two. Likewise the user indexes this instance's sign-ins stored last, with their versions,
/// so that a returning user's next sign-in here commits at once (<see cref="TryGetIndex"/>).
/// </summary>
/// <remarks>
/// Never trusted on its own: <see cref="SessionService"/> takes a cached state only where it leads to a write (a
/// rotation of its current refresh token, for its client and key, before any end), and that write's <c>If-Match</c>
/// fails if anything changed the session since this instance wrote it (a revocation, a racing refresh, the purge). The
/// refresh then reads the session and decides again on what is stored, so reuse detection, revocation and expiry answer
/// exactly as without the cache; every refusal is decided on a read. With several instances, a session refreshed
/// elsewhere since comes back with a token newer than the cached one, which is read as before (two operations): only a
/// change that leaves the current token as it was (an end, a race) costs the failed write, a third operation.
/// The same holds for a user's index: a sign-in decided on a held one commits <c>If-Match</c> its version, and one whose
/// commit finds it stale reads the row and decides again (<see cref="TryGetIndex"/> says when held ones are offered).
/// Bounded: at most <see cref="Capacity"/> sessions (about 1 KB each, 5 KB with 32 retired hashes) and as many user
/// indexes (about 2 KB with three sessions and eight redemptions listed), each held by Microsoft.Extensions.Caching.Memory's
/// size limit (an entry past it is not kept, and a compaction drops the least recently used quarter).
/// </remarks>
public sealed class SessionStateCache : IDisposable
{
    /// <summary>Sessions kept at most per instance, and as many user indexes.</summary>
    internal const int Capacity = 10_000;

    private static readonly MemoryCacheEntryOptions OneEntry = new() { Size = 1 };

    /// <summary>How far the score of held indexes goes either way (<see cref="IndexOutcome"/>).</summary>
    internal const int ScoreBound = 8;

    /// <summary>While held indexes do not pay, one sign-in in this many still takes one, so that the score can recover.</summary>
    internal const int ProbeEvery = 16;

    private readonly MemoryCache _entries = new(new MemoryCacheOptions { SizeLimit = Capacity, CompactionPercentage = 0.25 });

    private readonly MemoryCache _indexes = new(new MemoryCacheOptions { SizeLimit = Capacity, CompactionPercentage = 0.25 });

    /// <summary>
    /// How the sign-ins decided on a held index fared lately: +1 for each whose commit landed, -1 for each that found it
    /// stale, clamped to ±<see cref="ScoreBound"/> so that it follows a change within a few sign-ins.
    /// </summary>
    private int _indexScore;

    private int _indexProbes;

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

    /// <summary>
    /// The user's index as this instance's last commit for the user stored it, with the version the store gave it, when
    /// deciding on it pays: a sign-in that commits against it (<c>If-Match</c> that version) saves the point read, one
    /// against a stale one costs a failed transaction before the read. With several instances that each sign the user
    /// in, most held indexes are stale; so a held one is offered only while at least as many commits on held indexes
    /// landed as failed lately (the break-even), and otherwise to one sign-in in <see cref="ProbeEvery"/>.
    /// </summary>
    public bool TryGetIndex(string userId, [NotNullWhen(true)] out UserSessionIndex? index)
    {
        if (_indexes.TryGetValue(userId, out UserSessionIndex? held) && held is not null
            && (Volatile.Read(ref _indexScore) >= 0 || Interlocked.Increment(ref _indexProbes) % ProbeEvery == 0))
        {
            index = held;
            return true;
        }

        index = null;
        return false;
    }

    /// <summary>Remembers the user's index as the store holds it now; one without a version is not kept.</summary>
    public void SetIndex(string userId, UserSessionIndex stored)
    {
        if (stored.Version is null || stored.Sessions is null)
        {
            _indexes.Remove(userId);
            return;
        }

        _indexes.Set(userId, stored, OneEntry);
    }

    public void RemoveIndex(string userId) => _indexes.Remove(userId);

    /// <summary>
    /// Reports how a commit decided on an index from <see cref="TryGetIndex"/> fared; the caller forgets an index whose
    /// commit failed (<see cref="RemoveIndex"/>).
    /// </summary>
    public void IndexOutcome(bool landed)
    {
        int seen, next;
        do
        {
            seen = Volatile.Read(ref _indexScore);
            next = Math.Clamp(seen + (landed ? 1 : -1), -ScoreBound, ScoreBound);
        }
        while (Interlocked.CompareExchange(ref _indexScore, next, seen) != seen);
    }

    /// <summary>User indexes held (for tests and diagnostics).</summary>
    internal int IndexCount => _indexes.Count;

    public void Dispose()
    {
        _entries.Dispose();
        _indexes.Dispose();
    }
}
