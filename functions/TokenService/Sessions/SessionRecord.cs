namespace TokenService.Sessions;

/// <summary>
/// One login session (ASVS V7) and the hash of its one live refresh token. Immutable: every change is
/// a new record written with compare-and-swap on <see cref="ETag"/>. Nothing secret is held: refresh
/// tokens appear only as SHA-256 hashes.
/// </summary>
public sealed record SessionRecord
{
    /// <summary>Session id (the <c>sid</c> claim); it embeds the user's partition, see <see cref="SessionIds"/>.</summary>
    public required string SessionId { get; init; }

    /// <summary>The user as the IdP identifies them (value of <c>Idp:UserIdClaim</c>); IdP events name users by it.</summary>
    public required string UserId { get; init; }

    /// <summary>The <c>sub</c> our access tokens carry (the IdP's <c>sub</c>).</summary>
    public required string Subject { get; init; }

    public required string ClientId { get; init; }

    /// <summary>Space-delimited scopes granted when the session opened; refreshes never widen them.</summary>
    public required string Scope { get; init; }

    public required IReadOnlyList<string> Audiences { get; init; }

    public required DateTimeOffset CreatedAt { get; init; }

    /// <summary>Last issue or refresh; the idle timeout counts from here.</summary>
    public required DateTimeOffset LastActivityAt { get; init; }

    /// <summary><see cref="LastActivityAt"/> plus the idle timeout.</summary>
    public required DateTimeOffset IdleExpiresAt { get; init; }

    /// <summary>Creation plus the absolute lifetime; nothing of this session outlives it.</summary>
    public required DateTimeOffset AbsoluteExpiresAt { get; init; }

    /// <summary>
    /// The browser and system the session was opened from, as a short label ("Firefox on Windows",
    /// <see cref="UserAgentLabel"/>), so that the user can tell sessions apart; null when the request did not say or
    /// the session is older than the label. Never the raw User-Agent.
    /// </summary>
    public string? Device { get; init; }

    public DateTimeOffset? AuthTime { get; init; }
    public string? Acr { get; init; }
    public IReadOnlyList<string> Amr { get; init; } = [];

    /// <summary>base64url SHA-256 of the current refresh token.</summary>
    public required string RefreshTokenHash { get; init; }

    public required DateTimeOffset RefreshTokenExpiresAt { get; init; }

    /// <summary>Hash of the immediately previous refresh token (accepted within the reuse leeway, reuse after it).</summary>
    public string? PreviousRefreshTokenHash { get; init; }

    public DateTimeOffset? PreviousRotatedAt { get; init; }

    /// <summary>Hashes of older rotated refresh tokens, newest first, bounded: presenting one is reuse.</summary>
    public IReadOnlyList<string> RetiredRefreshTokenHashes { get; init; } = [];

    /// <summary>Number of rotations so far.</summary>
    public long Generation { get; init; }

    /// <summary>
    /// Random id of the write that produced this record. After a conditional write answers 412, the
    /// writer re-reads: its own write id means the write had in fact succeeded (a retried request).
    /// </summary>
    public required string WriteId { get; init; }

    /// <summary>
    /// RFC 7638 thumbprint of the DPoP key the session was opened (or first refreshed) with: every refresh must prove
    /// possession of that key (RFC 9449 §5). Null: not bound.
    /// </summary>
    public string? DpopJkt { get; init; }

    public DateTimeOffset? RevokedAt { get; init; }
    public string? RevocationReason { get; init; }

    /// <summary>When cleanup may delete the record: nothing can use or be validated against it after this.</summary>
    public required DateTimeOffset PurgeAt { get; init; }

    /// <summary>Store-assigned version for compare-and-swap; null on a record not yet stored.</summary>
    public string? ETag { get; init; }

    public bool IsLive(DateTimeOffset now) =>
        RevokedAt is null && now < IdleExpiresAt && now < AbsoluteExpiresAt;
}
