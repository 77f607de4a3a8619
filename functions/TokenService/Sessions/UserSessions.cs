namespace TokenService.Sessions;

/// <summary>
/// All session records of one user plus the version of the user's partition. Every change that must
/// respect the per-user limit (open with eviction, revoke all) is one atomic commit against
/// <see cref="Version"/>, so two racing logins cannot both see room for a new session.
/// </summary>
/// <param name="UserId">The user.</param>
/// <param name="Version">The partition version (null: the user has no row).</param>
/// <param name="Sessions">Every stored session of the user.</param>
/// <param name="RedeemedIdTokens">The replay keys of the ID tokens that opened them (<see cref="IdTokenRedemption"/>), until their purge.</param>
public sealed record UserSessions(string UserId, string? Version, IReadOnlyList<SessionRecord> Sessions, IReadOnlyCollection<string>? RedeemedIdTokens = null)
{
    public bool Redeemed(string replayKey) => RedeemedIdTokens?.Contains(replayKey) == true;
}

/// <summary>
/// The ID token a sign-in redeems (RFC 8693 token exchange): its replay key is stored in the user's partition with the
/// session it opens, in the same commit, so that the token opens one session at most and a failed sign-in leaves it
/// redeemable. Kept until <see cref="ExpiresAt"/> (the token's exp plus the clock skew), after which no check accepts it.
/// </summary>
public readonly record struct IdTokenRedemption(string ReplayKey, DateTimeOffset ExpiresAt);

/// <summary>
/// One atomic change to a user's sessions: succeeds only if the user's version still equals
/// <see cref="ExpectedVersion"/> (null: the user has no stored version yet) and every updated record's
/// ETag still matches. Then the version changes, <see cref="Inserts"/> are added and <see cref="Updates"/>
/// replace their records.
/// </summary>
/// <param name="UserId">The user whose partition changes.</param>
/// <param name="ExpectedVersion">The partition version the change was decided on (null: the user had no row).</param>
/// <param name="Inserts">New sessions (each must not exist yet).</param>
/// <param name="Updates">Replaced sessions (each must still have its ETag).</param>
/// <param name="Redeems">The ID token this change redeems: the commit conflicts when it was redeemed already.</param>
/// <param name="RecentRedemptions">
/// The user's latest redemptions to keep on the row (<see cref="UserSessionIndex.RecentRedemptions"/>); null keeps none.
/// </param>
/// <param name="Index">
/// Every session of the user that may be live once the change is applied (a superset: listing one that has ended
/// costs a partition query later, leaving a live one out would let the user past the limit), stored with the version
/// for <see cref="ISessionStore.GetUserIndexAsync"/>. Null stores no index: the next sign-in reads the partition.
/// </param>
public sealed record UserSessionsChange(
    string UserId,
    string? ExpectedVersion,
    IReadOnlyList<SessionRecord> Inserts,
    IReadOnlyList<SessionRecord> Updates,
    IReadOnlyList<IndexedSession>? Index = null,
    IdTokenRedemption? Redeems = null,
    IReadOnlyList<IdTokenRedemption>? RecentRedemptions = null);

/// <summary>A session the user's index lists: it may be live until <see cref="AbsoluteExpiresAt"/>, and never after.</summary>
public readonly record struct IndexedSession(string SessionId, DateTimeOffset AbsoluteExpiresAt)
{
    public static IndexedSession Of(SessionRecord session) => new(session.SessionId, session.AbsoluteExpiresAt);
}

/// <summary>
/// The user's index, read by point: <see cref="Sessions"/> lists every session of the user that may be live (each
/// commit of a sign-in or a revoke-all writes it; a refresh cannot make an ended session live again nor move its
/// absolute end, so the list stays a superset between commits). A sign-in whose count of listed sessions before
/// their absolute end leaves room under the limit commits against <see cref="Version"/> without reading the partition.
/// </summary>
/// <param name="Version">The partition version; null when the user has no row (no session was ever opened, or all ended and the row was purged).</param>
/// <param name="Sessions">The sessions the index lists; null when the store keeps no index for the user (then the partition decides).</param>
/// <param name="IndexedSince">
/// When the store began keeping indexes. A user without a row may still have sessions opened before then by a version
/// that kept none, live until their absolute end: a missing row proves no live session only once that has passed,
/// and ID tokens redeemed before then were recorded elsewhere (<c>IIdTokenReplayCache</c>). <see cref="DateTimeOffset.MaxValue"/>
/// for a store that keeps no index.
/// </param>
/// <param name="RecentRedemptions">
/// The user's latest ID-token redemptions, kept on the same row so that a replay is refused before its access token is
/// signed. A cache only: the redemption rows decide (a token missing here is still refused by the commit).
/// </param>
public sealed record UserSessionIndex(
    string? Version, IReadOnlyList<IndexedSession>? Sessions, DateTimeOffset IndexedSince, IReadOnlyList<IdTokenRedemption>? RecentRedemptions = null)
{
    /// <summary>What a store that keeps no index answers.</summary>
    public static readonly UserSessionIndex None = new(null, null, DateTimeOffset.MaxValue);
}

public enum StoreWriteStatus
{
    Success = 0,

    /// <summary>An ETag or version did not match (HTTP 412 in Table Storage), or an insert found the row present.</summary>
    Conflict,

    /// <summary>The record to replace does not exist any more.</summary>
    NotFound,
}

/// <summary>
/// Result of <see cref="ISessionStore.CommitReturningVersionsAsync"/>: the status, and when it succeeded the ETags the
/// store gave the change's inserted sessions, in their order, and the user's partition version after it (each null
/// when the store cannot tell it).
/// </summary>
public readonly record struct StoreCommitResult(StoreWriteStatus Status, IReadOnlyList<string>? InsertedETags = null, string? Version = null);

/// <summary>Result of a compare-and-swap write: conflicts are results, not exceptions.</summary>
public readonly record struct StoreWriteResult(StoreWriteStatus Status, SessionRecord? Record = null)
{
    public bool Succeeded => Status == StoreWriteStatus.Success;
    public static StoreWriteResult Conflict => new(StoreWriteStatus.Conflict);
    public static StoreWriteResult NotFound => new(StoreWriteStatus.NotFound);
}
