namespace TokenService.Sessions;

/// <summary>
/// All session records of one user plus the version of the user's partition. Every change that must
/// respect the per-user limit (open with eviction, revoke all) is one atomic commit against
/// <see cref="Version"/>, so two racing logins cannot both see room for a new session.
/// </summary>
public sealed record UserSessions(string UserId, string? Version, IReadOnlyList<SessionRecord> Sessions);

/// <summary>
/// One atomic change to a user's sessions: succeeds only if the user's version still equals
/// <see cref="ExpectedVersion"/> (null: the user has no stored version yet) and every updated record's
/// ETag still matches. Then the version changes, <see cref="Inserts"/> are added and <see cref="Updates"/>
/// replace their records.
/// </summary>
public sealed record UserSessionsChange(
    string UserId,
    string? ExpectedVersion,
    IReadOnlyList<SessionRecord> Inserts,
    IReadOnlyList<SessionRecord> Updates);

public enum StoreWriteStatus
{
    Success = 0,

    /// <summary>An ETag or version did not match (HTTP 412 in Table Storage), or an insert found the row present.</summary>
    Conflict,

    /// <summary>The record to replace does not exist any more.</summary>
    NotFound,
}

/// <summary>Result of a compare-and-swap write: conflicts are results, not exceptions.</summary>
public readonly record struct StoreWriteResult(StoreWriteStatus Status, SessionRecord? Record = null)
{
    public bool Succeeded => Status == StoreWriteStatus.Success;
    public static StoreWriteResult Conflict => new(StoreWriteStatus.Conflict);
    public static StoreWriteResult NotFound => new(StoreWriteStatus.NotFound);
}
