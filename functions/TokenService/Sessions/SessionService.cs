using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TokenService.Configuration;
using TokenService.Diagnostics;
using TokenService.Hosting;
using TokenService.Idp;
using TokenService.Tokens;

namespace TokenService.Sessions;

/// <summary>What the IdP said about the login that opens a session, and the browser it came from (<see cref="SessionRecord.Device"/>).</summary>
public sealed record OpenSessionRequest(
    string UserId, string Subject, string ClientId, string Scope, IReadOnlyList<string> Audiences,
    DateTimeOffset? AuthTime, string? Acr, IReadOnlyList<string> Amr, string? DpopJkt = null, string? Device = null,
    IdTokenRedemption? IdToken = null);

/// <summary>
/// Signs the access token for a session about to be stored. Called before the commit, so that a signing
/// fault (Key Vault down) leaves nothing changed; called at most once per request.
/// </summary>
public delegate ValueTask<IssuedAccessToken> AccessTokenFactory(SessionRecord session, string scope, CancellationToken cancellationToken);

/// <summary>
/// The caller's check of the targets of a refresh (RFC 8707 §2.2) on the session the rotation would store, run where
/// the access token would be signed: null to go on, or why the request's target is refused; then nothing is stored.
/// </summary>
public delegate string? RefreshTargetCheck(SessionRecord rotated);

public enum RefreshStatus
{
    Success,

    /// <summary>The requested scope exceeds what the session was granted (RFC 6749 §6): nothing changed.</summary>
    InvalidScope,

    /// <summary>Unknown, malformed, expired or foreign token, or an ended session: nothing changed.</summary>
    Invalid,

    /// <summary>
    /// A rotated token was presented again: the whole session has been revoked (RFC 9700 §4.14.2), with or without a
    /// DPoP proof, of any key.
    /// </summary>
    ReuseDetected,

    /// <summary>
    /// The session is bound to a DPoP key and the request proved none or another (RFC 9449 §5): nothing changed.
    /// Only for a token that may still be used (not reuse, which wins over this).
    /// </summary>
    ProofKeyMismatch,

    /// <summary>The caller's <see cref="RefreshTargetCheck"/> refused the request's target: nothing changed.</summary>
    InvalidTarget,
}

public sealed record RefreshOutcome(
    RefreshStatus Status, string Description, SessionRecord? Session = null, string? RefreshToken = null, IssuedAccessToken? AccessToken = null);

/// <summary>
/// Session lifecycle (ASVS V7): open with the per-user limit, refresh with rotation and reuse detection,
/// revoke. Every change is compare-and-swap against the store, retried on conflict, so concurrent
/// requests never leave two live refresh tokens in one session or more than the limit of sessions.
/// </summary>
public sealed partial class SessionService : IUserSessionRevoker
{
    /// <summary>Older rotated hashes kept for reuse detection (beyond the immediately previous one).</summary>
    internal const int RetiredHashLimit = 32;

    private const int MaxCommitAttempts = 64;

    private readonly ISessionStore _store;
    private readonly TokenServiceOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<SessionService> _logger;
    private readonly TokenServiceMetrics _metrics;
    private readonly IAuditSink? _audit;
    private readonly ISessionEndedSink? _ended;

    /// <summary>Where versions before redemptions were stored with sessions recorded redeemed ID tokens (see <see cref="TryOpenAsync"/>).</summary>
    private readonly IIdTokenReplayCache? _earlierReplayMarkers;

    /// <summary>The state of sessions this instance wrote last, so that a refresh can write without reading first.</summary>
    private readonly SessionStateCache? _stateCache;

    public SessionService(
        ISessionStore store, IOptions<TokenServiceOptions> options, TimeProvider time, ILogger<SessionService> logger, TokenServiceMetrics metrics, IAuditSink? audit = null,
        ISessionEndedSink? ended = null, IIdTokenReplayCache? earlierReplayMarkers = null, SessionStateCache? stateCache = null)
    {
        _earlierReplayMarkers = earlierReplayMarkers;
        _stateCache = stateCache;
        _store = store;
        _options = options.Value;
        _time = time;
        _logger = logger;
        _metrics = metrics;
        _audit = audit;
        _ended = ended;
    }

    /// <summary>Opens a session (see <see cref="TryOpenAsync"/>) for a request that redeems no ID token.</summary>
    public async Task<(SessionRecord Session, string RefreshToken, IssuedAccessToken AccessToken)> OpenAsync(
        OpenSessionRequest request, AccessTokenFactory issueAccessToken, CancellationToken cancellationToken) =>
        await TryOpenAsync(request, issueAccessToken, cancellationToken)
        ?? throw new InvalidOperationException("The request's ID token was redeemed already: use TryOpenAsync.");

    /// <summary>
    /// Opens a session under the per-user limit (ASVS V7: the oldest live sessions end to make room) and signs its
    /// access token. When the request redeems an ID token (<see cref="OpenSessionRequest.IdToken"/>), the redemption is
    /// stored in the same commit; null when that token was redeemed already (a replay), and then nothing is stored.
    /// </summary>
    public async Task<(SessionRecord Session, string RefreshToken, IssuedAccessToken AccessToken)?> TryOpenAsync(
        OpenSessionRequest request, AccessTokenFactory issueAccessToken, CancellationToken cancellationToken)
    {
        // A returning user this instance signed in last: the index it stored then, with the version the store gave it, so
        // the commit goes at once (its If-Match fails if anything changed the user's row since, and then the partition
        // decides). Else the index by point read.
        var held = _stateCache is { } cache && cache.TryGetIndex(request.UserId, out var cached) ? cached : null;
        var index = held ?? await _store.GetUserIndexAsync(request.UserId, cancellationToken);
        var redemption = request.IdToken;
        if (redemption is { } token && _earlierReplayMarkers is { } markers && _time.GetUtcNow() < TimeArithmetic.AddSaturating(index.IndexedSince, _options.SessionAbsoluteLifetime))
        {
            // The store began keeping redemptions with the sessions less than a session lifetime ago (a table of an
            // earlier version): a token may have been redeemed where that version recorded it, so it is recorded there
            // too, and forgotten again when no session opens.
            if (!await markers.TryAddAsync(token.ReplayKey, token.ExpiresAt, cancellationToken))
            {
                return null;
            }

            try
            {
                return await OpenCoreAsync(request, index, held is not null, issueAccessToken, cancellationToken);
            }
            catch (Exception ex) when (ex is DependencyUnavailableException or OperationCanceledException)
            {
                await ForgetEarlierMarkerAsync(markers, token.ReplayKey);
                throw;
            }
        }

        return await OpenCoreAsync(request, index, held is not null, issueAccessToken, cancellationToken);
    }

    private static async Task ForgetEarlierMarkerAsync(IIdTokenReplayCache markers, string replayKey)
    {
        try
        {
            await markers.RemoveAsync(replayKey, CancellationToken.None);
        }
        catch (DependencyUnavailableException)
        {
            // The marker stays; the user signs in at the IdP again.
        }
    }

    private async Task<(SessionRecord Session, string RefreshToken, IssuedAccessToken AccessToken)?> OpenCoreAsync(
        OpenSessionRequest request, UserSessionIndex? index, bool indexHeld, AccessTokenFactory issueAccessToken, CancellationToken cancellationToken)
    {
        if (request.IdToken is { } presented && index?.RecentRedemptions is { } recent && recent.Any(r => r.ReplayKey == presented.ReplayKey))
        {
            // A replay the user's row already names: refused before anything is signed.
            return null;
        }

        var recentAfter = RecentAfter(index?.RecentRedemptions, request.IdToken, _time.GetUtcNow());
        var indexedSince = index?.IndexedSince;
        var sessionId = SessionIds.NewSessionId(request.UserId);
        var (refreshToken, refreshHash) = RefreshTokens.Create(sessionId);
        var writeId = NewWriteId();
        var committedOnce = false;
        IssuedAccessToken? accessToken = null;

        // The sessions the last attempt's commit ended (the per-user limit) and when: if that commit turns out to have
        // landed, they are the ones it ended.
        List<SessionRecord> lastEvicted = [];
        var lastAttemptAt = default(DateTimeOffset);

        for (var attempt = 0; attempt < MaxCommitAttempts; attempt++)
        {
            var now = _time.GetUtcNow();
            var session = NewSession(request, sessionId, refreshHash, writeId, now);
            string? version;
            List<SessionRecord> evicted;
            List<IndexedSession> indexAfter;
            var onHeldIndex = false;
            if (index is not null && RoomByIndex(index, now) is { } listed)
            {
                onHeldIndex = indexHeld && attempt == 0;
                // The index proves room under the limit: no session to end, so no partition query (one point read and
                // the commit, which also redeems the ID token; the commit alone on a held index). The commit's If-Match
                // on the version keeps the limit under races; after a conflict (a race, a lost answer, or the ID token
                // redeemed already) the next attempts read the partition, which tells these apart.
                version = index.Version;
                evicted = [];
                listed.Add(IndexedSession.Of(session));
                indexAfter = listed;
            }
            else
            {
                var user = await _store.GetUserSessionsAsync(request.UserId, cancellationToken);
                if (committedOnce && user.Sessions.FirstOrDefault(s => s.SessionId == sessionId) is { } mine && mine.WriteId == writeId)
                {
                    // Our earlier commit had succeeded although the store answered with a conflict (a retried request).
                    // Only the last attempt can have landed (an earlier one would have been found by this read one attempt
                    // sooner), and the commit is atomic, so the sessions it evicted are ended: they are reported like
                    // those of a commit that answered success, or no receiver would ever hear of them.
                    var evictedThen = EndedByCommit(user, lastEvicted);
                    LogSessionOpened(_logger, sessionId, request.ClientId, evictedThen.Count);
                    RecordOpened(mine, evictedThen, lastAttemptAt);
                    return (mine, refreshToken, accessToken!.Value);
                }

                if (request.IdToken is { } redemption && user.Redeemed(redemption.ReplayKey))
                {
                    // RFC 8693 exchange of an ID token that opened a session already (ours would have been found above).
                    return null;
                }

                // ASVS V7: at most MaxSessionsPerUser live sessions; the oldest live ones end to make room.
                var live = user.Sessions.Where(s => s.IsLive(now)).OrderBy(s => s.CreatedAt).ThenBy(s => s.SessionId, StringComparer.Ordinal).ToList();
                var evictCount = Math.Max(0, live.Count - (_options.MaxSessionsPerUser - 1));
                version = user.Version;
                evicted = live.Take(evictCount).Select(s => Revoked(s, now, SessionEndReason.SessionLimit)).ToList();

                // The index written with the commit is exact here: the live sessions that stay, and the new one.
                indexAfter = live.Skip(evictCount).Select(IndexedSession.Of).Append(IndexedSession.Of(session)).ToList();
            }

            index = null;

            // Sign before storing: a signing fault must leave no session behind. The token stays valid for later
            // attempts: its exp is capped by this attempt's absolute end, which is never after a later one's.
            accessToken ??= await issueAccessToken(session, request.Scope, cancellationToken);
            var committed = await _store.CommitReturningVersionsAsync(
                new UserSessionsChange(request.UserId, version, [session], evicted, indexAfter, request.IdToken, recentAfter), cancellationToken);
            if (onHeldIndex)
            {
                _stateCache!.IndexOutcome(landed: committed.Status == StoreWriteStatus.Success);
            }

            if (committed.Status == StoreWriteStatus.Success)
            {
                Remember(session, committed, evicted, indexedSince is { } since ? new UserSessionIndex(committed.Version, indexAfter, since, recentAfter) : null);
                LogSessionOpened(_logger, sessionId, request.ClientId, evicted.Count);
                RecordOpened(session, evicted, now);
                return (session, refreshToken, accessToken.Value);
            }

            // Whatever held index this instance has for the user is stale now, or its commit may have landed unseen.
            _stateCache?.RemoveIndex(request.UserId);
            committedOnce = true;
            lastEvicted = evicted;
            lastAttemptAt = now;
            if (onHeldIndex)
            {
                // Most likely the held index was stale (a sign-in or revoke-all on another instance, the cleanup): the
                // next attempt starts where a sign-in without one starts, from the row read by point, not from the
                // partition. A replay or a lost answer then conflicts again and the partition tells them apart.
                index = await _store.GetUserIndexAsync(request.UserId, cancellationToken);
                recentAfter = RecentAfter(index.RecentRedemptions, request.IdToken, _time.GetUtcNow());
                continue;
            }

            await BackoffAsync(attempt, cancellationToken);
        }

        throw new DependencyUnavailableException("storage", "Too much contention opening a session.", TimeSpan.FromSeconds(1));
    }

    /// <summary>
    /// The state a sign-in stored, for the session's first refresh here and the user's next sign-in here; the sessions it
    /// ended are forgotten.
    /// </summary>
    private void Remember(SessionRecord opened, StoreCommitResult committed, List<SessionRecord> ended, UserSessionIndex? stored)
    {
        if (_stateCache is not { } cache)
        {
            return;
        }

        if (stored is not null)
        {
            cache.SetIndex(opened.UserId, stored);
        }

        foreach (var session in ended)
        {
            cache.Remove(session.SessionId);
        }

        if (committed.InsertedETags is [var etag])
        {
            cache.Set(opened with { ETag = etag });
        }
    }

    /// <summary>
    /// The sessions of <paramref name="index"/> that may still be live, when the index proves room for one more under
    /// the limit: the store keeps one for the user (or the user has no row, and no session of a version without indexes
    /// can still be live), and fewer than MaxSessionsPerUser listed sessions are before their absolute end. Null
    /// otherwise: the partition decides.
    /// </summary>
    private List<IndexedSession>? RoomByIndex(UserSessionIndex index, DateTimeOffset now)
    {
        if (index.Sessions is not { } sessions || (index.Version is null && now < TimeArithmetic.AddSaturating(index.IndexedSince, _options.SessionAbsoluteLifetime)))
        {
            return null;
        }

        var mayBeLive = new List<IndexedSession>(sessions.Count + 1);
        foreach (var listed in sessions)
        {
            if (listed.AbsoluteExpiresAt > now)
            {
                mayBeLive.Add(listed);
            }
        }

        return mayBeLive.Count < _options.MaxSessionsPerUser ? mayBeLive : null;
    }

    /// <summary>How many of the user's latest redemptions the row keeps (a replay of an older one is refused by the commit).</summary>
    private const int RecentRedemptionsKept = 8;

    /// <summary>The redemptions to keep on the user's row: the unexpired ones read, and this sign-in's, the latest few.</summary>
    private static List<IdTokenRedemption>? RecentAfter(IReadOnlyList<IdTokenRedemption>? read, IdTokenRedemption? redeems, DateTimeOffset now)
    {
        if (redeems is not { } current)
        {
            return null;
        }

        var kept = new List<IdTokenRedemption>(RecentRedemptionsKept);
        foreach (var earlier in read ?? [])
        {
            if (earlier.ExpiresAt > now)
            {
                kept.Add(earlier);
            }
        }

        if (kept.Count >= RecentRedemptionsKept)
        {
            kept.RemoveRange(0, kept.Count - RecentRedemptionsKept + 1);
        }

        kept.Add(current);
        return kept;
    }

    private SessionRecord NewSession(OpenSessionRequest request, string sessionId, string refreshHash, string writeId, DateTimeOffset now)
    {
        var absoluteExpiresAt = now + _options.SessionAbsoluteLifetime;
        return new SessionRecord
        {
            SessionId = sessionId,
            UserId = request.UserId,
            Subject = request.Subject,
            ClientId = request.ClientId,
            Scope = request.Scope,
            Audiences = request.Audiences,
            CreatedAt = now,
            LastActivityAt = now,
            IdleExpiresAt = now + _options.SessionIdleTimeout,
            AbsoluteExpiresAt = absoluteExpiresAt,
            AuthTime = request.AuthTime,
            Acr = request.Acr,
            Amr = request.Amr,
            DpopJkt = request.DpopJkt,
            Device = request.Device,
            RefreshTokenHash = refreshHash,
            RefreshTokenExpiresAt = Min(now + _options.RefreshTokenLifetime, absoluteExpiresAt),
            WriteId = writeId,
            PurgeAt = Min(now + _options.SessionIdleTimeout, absoluteExpiresAt) + _options.AccessTokenLifetime,
        };
    }

    /// <param name="refreshToken">The refresh token presented (null or blank: refused as missing).</param>
    /// <param name="clientId">The authenticated client; a token of another client is refused.</param>
    /// <param name="requestedScope">A narrower scope asked for (RFC 6749 §6), or null for the session's.</param>
    /// <param name="dpopJkt">Thumbprint of the key the request's DPoP proof was signed with; null without a proof.</param>
    /// <param name="issueAccessToken">Signs the new access token once the rotation is decided.</param>
    /// <param name="cancellationToken">The request's budget.</param>
    public Task<RefreshOutcome> RefreshAsync(
        string? refreshToken, string clientId, string? requestedScope, string? dpopJkt, AccessTokenFactory issueAccessToken, CancellationToken cancellationToken) =>
        RefreshAsync(refreshToken, clientId, requestedScope, dpopJkt, issueAccessToken, checkTarget: null, cancellationToken);

    /// <param name="refreshToken">The refresh token presented (null or blank: refused as missing).</param>
    /// <param name="clientId">The authenticated client; a token of another client is refused.</param>
    /// <param name="requestedScope">A narrower scope asked for (RFC 6749 §6), or null for the session's.</param>
    /// <param name="dpopJkt">Thumbprint of the key the request's DPoP proof was signed with; null without a proof.</param>
    /// <param name="issueAccessToken">Signs the new access token once the rotation is decided.</param>
    /// <param name="cancellationToken">The request's budget.</param>
    /// <param name="checkTarget">
    /// Run once, after every check of the token and the scope and before the access token is signed; a refusal is
    /// <see cref="RefreshStatus.InvalidTarget"/> with its description, and nothing is stored.
    /// </param>
    public async Task<RefreshOutcome> RefreshAsync(
        string? refreshToken, string clientId, string? requestedScope, string? dpopJkt, AccessTokenFactory issueAccessToken, RefreshTargetCheck? checkTarget,
        CancellationToken cancellationToken)
    {
        var sessionId = RefreshTokens.TryGetSessionId(refreshToken);
        if (sessionId is null)
        {
            return new(RefreshStatus.Invalid, "The refresh token is invalid.");
        }

        var presentedHash = RefreshTokens.Hash(refreshToken!);
        string? pendingWriteId = null;
        string? pendingToken = null;
        IssuedAccessToken? accessToken = null;

        // The state this instance stored last, tried first when the presented token is its current one (see
        // RotatableFromCache): a rotation written against it needs no read; any other outcome reads the session.
        SessionRecord? cached = null;
        _stateCache?.TryGet(sessionId, out cached);

        for (var attempt = 0; attempt < MaxCommitAttempts; attempt++)
        {
            var now = _time.GetUtcNow();
            var fromCache = cached is not null && RotatableFromCache(cached, presentedHash, clientId, dpopJkt, now);
            var session = fromCache ? cached : await _store.GetSessionAsync(sessionId, cancellationToken);
            cached = null;
            if (session is null)
            {
                return new(RefreshStatus.Invalid, "The refresh token is invalid.");
            }

            if (pendingWriteId is not null && session.WriteId == pendingWriteId)
            {
                // Our rotation was stored although the write reported a conflict (412 after a retried success).
                return new(RefreshStatus.Success, "rotated", session, pendingToken, accessToken);
            }

            var isCurrent = RefreshTokens.HashEquals(presentedHash, session.RefreshTokenHash);
            var isPrevious = !isCurrent && RefreshTokens.HashEquals(presentedHash, session.PreviousRefreshTokenHash);
            var isRetired = !isCurrent && !isPrevious && MatchesAny(presentedHash, session.RetiredRefreshTokenHashes);
            if (!isCurrent && !isPrevious && !isRetired)
            {
                return new(RefreshStatus.Invalid, "The refresh token is invalid.");
            }

            // RFC 6749 §10.4: a refresh token is bound to the client it was issued to.
            if (!string.Equals(session.ClientId, clientId, StringComparison.Ordinal))
            {
                LogCrossClientRefresh(_logger, sessionId, clientId);
                return new(RefreshStatus.Invalid, "The refresh token was not issued to this client.");
            }

            if (session.RevokedAt is not null)
            {
                return new(RefreshStatus.Invalid, "The session has ended.");
            }

            if (now >= session.AbsoluteExpiresAt || now >= session.IdleExpiresAt)
            {
                return new(RefreshStatus.Invalid, "The session has expired.");
            }

            var withinLeeway = isPrevious && _options.RefreshTokenReuseLeeway > TimeSpan.Zero
                && session.PreviousRotatedAt is { } rotatedAt && now - rotatedAt <= _options.RefreshTokenReuseLeeway;
            if ((isPrevious && !withinLeeway) || isRetired)
            {
                await RevokeSessionCoreAsync(session, SessionEndReason.RefreshTokenReuse, cancellationToken);
                LogReuseDetected(_logger, sessionId, clientId);
                RecordReuse(session);
                return new(RefreshStatus.ReuseDetected, "The refresh token has already been used; the session has been revoked.");
            }

            // RFC 9449 §5: a key-bound session refreshes only with a proof of that key. Checked after reuse detection
            // (RFC 9700 §4.14.2): a superseded token ends the session whatever the proof says, so no proof can shield
            // a stolen token from the victim's reuse. Only the current token (or the previous one within the leeway)
            // gets here: without the key it changes nothing, no rotation and no revocation, since it is not reuse.
            if (session.DpopJkt is not null && !string.Equals(session.DpopJkt, dpopJkt, StringComparison.Ordinal))
            {
                LogProofKeyMismatch(_logger, sessionId, clientId);
                return new(RefreshStatus.ProofKeyMismatch, dpopJkt is null
                    ? "The refresh token is bound to a DPoP key: send a DPoP proof of that key."
                    : "The DPoP proof is not signed with the key the refresh token is bound to.");
            }

            if (isCurrent && now >= session.RefreshTokenExpiresAt)
            {
                return new(RefreshStatus.Invalid, "The refresh token has expired.");
            }

            // RFC 6749 §6: a refresh may narrow the scope, never widen it.
            var scope = session.Scope;
            if (requestedScope is not null)
            {
                var granted = session.Scope.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                var requested = requestedScope.Split(' ', StringSplitOptions.RemoveEmptyEntries).Distinct(StringComparer.Ordinal).ToArray();
                if (requested.Length == 0 || !requested.All(granted.Contains))
                {
                    if (fromCache)
                    {
                        // A refusal is decided on what is stored (the session may have ended since): read it.
                        continue;
                    }

                    return new(RefreshStatus.InvalidScope, "The requested scope exceeds the scope originally granted.");
                }

                scope = string.Join(' ', requested);
            }

            var (newToken, newHash) = RefreshTokens.Create(sessionId);
            var writeId = NewWriteId();
            var retired = new List<string>(RetiredHashLimit);
            if (isCurrent && session.PreviousRefreshTokenHash is not null)
            {
                retired.Add(session.PreviousRefreshTokenHash);
            }
            else if (isPrevious)
            {
                // Within the leeway the previous token is accepted once more; it is retired now, and the
                // token it had been replaced by becomes the previous one.
                retired.Add(presentedHash);
            }

            var kept = session.RetiredRefreshTokenHashes;
            for (var i = 0; i < kept.Count && retired.Count < RetiredHashLimit; i++)
            {
                retired.Add(kept[i]);
            }
            var idleExpiresAt = now + _options.SessionIdleTimeout;
            var rotated = session with
            {
                RefreshTokenHash = newHash,
                RefreshTokenExpiresAt = Min(now + _options.RefreshTokenLifetime, session.AbsoluteExpiresAt),
                PreviousRefreshTokenHash = isCurrent ? presentedHash : session.RefreshTokenHash,
                PreviousRotatedAt = now,
                RetiredRefreshTokenHashes = retired,
                Generation = session.Generation + 1,
                LastActivityAt = now,
                IdleExpiresAt = idleExpiresAt,
                WriteId = writeId,
                PurgeAt = Min(idleExpiresAt, session.AbsoluteExpiresAt) + _options.AccessTokenLifetime,

                // The binding is fixed when the session opens and never changes here. A refresh never binds an unbound
                // session: its refresh token may have been stolen before any proof was made, and binding it to the key
                // of whoever refreshes first would let a thief lock the victim out and survive the victim's reuse. The
                // access token may still be bound to the request's proof (the caller issues it); the refresh token
                // stays a bearer token, for public clients too, although RFC 9449 §5 binds theirs: their binding
                // starts with the grant, so a client that wants a bound session signs in again with a proof.
            };

            // The caller's target check, once, where the token would be signed: a refused target changes nothing.
            if (accessToken is null && checkTarget?.Invoke(rotated) is { } targetError)
            {
                if (fromCache)
                {
                    continue;
                }

                return new(RefreshStatus.InvalidTarget, targetError);
            }

            // Sign before storing the rotation: if signing fails, the presented token stays current and the
            // client can simply retry (a stored rotation whose answer was lost would turn the retry into reuse).
            accessToken ??= await issueAccessToken(rotated, scope, cancellationToken);
            var result = await _store.ReplaceSessionAsync(rotated, cancellationToken);
            switch (result.Status)
            {
                case StoreWriteStatus.Success:
                    if (result.Record is { } stored)
                    {
                        _stateCache?.Set(stored);
                    }

                    return new(RefreshStatus.Success, "rotated", result.Record ?? rotated, newToken, accessToken);
                case StoreWriteStatus.NotFound:
                    _stateCache?.Remove(sessionId);
                    return new(RefreshStatus.Invalid, "The refresh token is invalid.");
                default:
                    // Someone else changed the session (a parallel refresh, a revocation), or our own write
                    // succeeded and was retried: re-read and decide again.
                    pendingWriteId = writeId;
                    pendingToken = newToken;
                    continue;
            }
        }

        throw new DependencyUnavailableException("storage", "Too much contention refreshing a session.", TimeSpan.FromSeconds(1));
    }

    /// <summary>
    /// Whether a cached state leads to a rotation, so that it may be written against without a read: the presented token
    /// is its current one, for its client and key, and nothing has ended. Only the write's <c>If-Match</c> then proves the
    /// state still stored; every other case (a superseded token, whose reuse ends the session; an unknown one, which may
    /// be newer than the cache; an ended or expired session) reads the session and decides on what is stored.
    /// </summary>
    private static bool RotatableFromCache(SessionRecord cached, string presentedHash, string clientId, string? dpopJkt, DateTimeOffset now) =>
        RefreshTokens.HashEquals(presentedHash, cached.RefreshTokenHash)
        && string.Equals(cached.ClientId, clientId, StringComparison.Ordinal)
        && cached.IsLive(now) && now < cached.RefreshTokenExpiresAt
        && (cached.DpopJkt is null || string.Equals(cached.DpopJkt, dpopJkt, StringComparison.Ordinal));

    /// <summary>Finds the live session a refresh token belongs to, for revocation. Null when the token matches nothing.</summary>
    public async Task<SessionRecord?> FindByRefreshTokenAsync(string? refreshToken, CancellationToken cancellationToken)
    {
        var sessionId = RefreshTokens.TryGetSessionId(refreshToken);
        if (sessionId is null)
        {
            return null;
        }

        var session = await _store.GetSessionAsync(sessionId, cancellationToken);
        if (session is null)
        {
            return null;
        }

        var hash = RefreshTokens.Hash(refreshToken!);
        var matches = RefreshTokens.HashEquals(hash, session.RefreshTokenHash)
            || RefreshTokens.HashEquals(hash, session.PreviousRefreshTokenHash)
            || MatchesAny(hash, session.RetiredRefreshTokenHashes);
        return matches ? session : null;
    }

    public ValueTask<SessionRecord?> GetAsync(string sessionId, CancellationToken cancellationToken) =>
        SessionIds.IsWellFormed(sessionId) ? _store.GetSessionAsync(sessionId, cancellationToken) : ValueTask.FromResult<SessionRecord?>(null);

    public async Task<IReadOnlyList<SessionRecord>> ListLiveAsync(string userId, CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow();
        var user = await _store.GetUserSessionsAsync(userId, cancellationToken);
        return user.Sessions.Where(s => s.IsLive(now)).OrderByDescending(s => s.CreatedAt).ToList();
    }

    /// <summary>Ends one session. Returns false when it was not live.</summary>
    public async Task<bool> RevokeSessionAsync(string sessionId, SessionEndReason reason, CancellationToken cancellationToken)
    {
        var session = await GetAsync(sessionId, cancellationToken);
        return session is not null && await RevokeSessionCoreAsync(session, reason, cancellationToken);
    }

    private async Task<bool> RevokeSessionCoreAsync(SessionRecord session, SessionEndReason reason, CancellationToken cancellationToken)
    {
        string? pendingWriteId = null;
        for (var attempt = 0; attempt < MaxCommitAttempts; attempt++)
        {
            var now = _time.GetUtcNow();
            if (pendingWriteId is not null && session.WriteId == pendingWriteId && session.RevokedAt is { } revokedAt)
            {
                // Our revocation was stored although the write reported a conflict (the store retried a request whose
                // first try had succeeded, and the retry found its own ETag gone): the end is ours and committed, so it
                // is reported as if the write had answered success, once.
                LogSessionRevoked(_logger, session.SessionId, reason.Code);
                RecordRevoked([session], reason, revokedAt);
                return true;
            }

            if (session.RevokedAt is not null)
            {
                return false;
            }

            if (!session.IsLive(now))
            {
                // Idle or absolute expiry already ended it: there is nothing to end, so nothing is written and nobody is
                // told (ISessionEndedSink: expiry is never reported, the tokens' own exp covers it). A sign-out of an
                // expired session is still answered as a sign-out by the caller.
                return false;
            }

            var revoked = Revoked(session, now, reason);
            _stateCache?.Remove(session.SessionId);
            var result = await _store.ReplaceSessionAsync(revoked, cancellationToken);
            if (result.Status == StoreWriteStatus.Success)
            {
                LogSessionRevoked(_logger, session.SessionId, reason.Code);
                RecordRevoked([session], reason, now);
                return true;
            }

            if (result.Status == StoreWriteStatus.NotFound || await _store.GetSessionAsync(session.SessionId, cancellationToken) is not { } reread)
            {
                return false;
            }

            pendingWriteId = revoked.WriteId;
            session = reread;
        }

        throw new DependencyUnavailableException("storage", "Too much contention revoking a session.", TimeSpan.FromSeconds(1));
    }

    public async Task<int> RevokeAllAsync(string userId, SessionEndReason reason, string? exceptSessionId, DateTimeOffset? createdBefore, CancellationToken cancellationToken)
    {
        List<SessionRecord>? pending = null;
        var pendingAt = default(DateTimeOffset);
        for (var attempt = 0; attempt < MaxCommitAttempts; attempt++)
        {
            var now = _time.GetUtcNow();
            var user = await _store.GetUserSessionsAsync(userId, cancellationToken);
            if (pending is not null && EndedByCommit(user, pending) is { Count: > 0 } landed)
            {
                // The last commit was stored although the store answered with a conflict (a retried request whose first
                // try had succeeded): its sessions are ended by us, and reported as if it had answered success.
                LogUserSessionsRevoked(_logger, landed.Count, reason.Code);
                RecordRevoked(landed, reason, pendingAt);
                return landed.Count;
            }

            var targets = user.Sessions
                .Where(s => s.IsLive(now) && s.SessionId != exceptSessionId && (createdBefore is null || s.CreatedAt < createdBefore))
                .Select(s => Revoked(s, now, reason))
                .ToList();
            if (targets.Count == 0)
            {
                return 0;
            }

            // The index written with the commit: the live sessions this change leaves (exact, from the partition read).
            var remaining = user.Sessions
                .Where(s => s.IsLive(now) && !targets.Exists(t => t.SessionId == s.SessionId))
                .Select(IndexedSession.Of)
                .ToList();
            foreach (var target in targets)
            {
                _stateCache?.Remove(target.SessionId);
            }

            _stateCache?.RemoveIndex(userId);

            var status = await _store.CommitAsync(new UserSessionsChange(userId, user.Version, [], targets, remaining), cancellationToken);
            if (status == StoreWriteStatus.Success)
            {
                LogUserSessionsRevoked(_logger, targets.Count, reason.Code);
                RecordRevoked(targets, reason, now);
                return targets.Count;
            }

            pending = targets;
            pendingAt = now;
            await BackoffAsync(attempt, cancellationToken);
        }

        throw new DependencyUnavailableException("storage", "Too much contention revoking sessions.", TimeSpan.FromSeconds(1));
    }

    private SessionRecord Revoked(SessionRecord session, DateTimeOffset now, SessionEndReason reason) => session with
    {
        RevokedAt = now,
        RevocationReason = reason.Code,
        WriteId = NewWriteId(),
        PurgeAt = now + _options.AccessTokenLifetime,
    };

    /// <summary>
    /// The stored records of <paramref name="written"/> when the store holds each of them as written (same write id):
    /// the commit that wrote them landed. A commit is atomic, so either all of them are there or it did not land (then
    /// the list is empty).
    /// </summary>
    private static List<SessionRecord> EndedByCommit(UserSessions user, List<SessionRecord> written)
    {
        var stored = new List<SessionRecord>(written.Count);
        foreach (var record in written)
        {
            if (user.Sessions.FirstOrDefault(s => s.SessionId == record.SessionId) is not { } current || current.WriteId != record.WriteId)
            {
                return [];
            }

            stored.Add(current);
        }

        return stored;
    }

    private static DateTimeOffset Min(DateTimeOffset a, DateTimeOffset b) => a < b ? a : b;

    private static string NewWriteId()
    {
        Span<byte> bytes = stackalloc byte[12];
        RandomNumberGenerator.Fill(bytes);
        return Convert.ToHexString(bytes);
    }

    /// <summary>
    /// Whether <paramref name="hash"/> is one of <paramref name="hashes"/>, each compared in constant time. A loop rather
    /// than a LINQ predicate: a lambda over the presented hash would make the async refresh allocate its closure on
    /// every call, matched or not.
    /// </summary>
    private static bool MatchesAny(string hash, IReadOnlyList<string> hashes)
    {
        for (var i = 0; i < hashes.Count; i++)
        {
            if (RefreshTokens.HashEquals(hash, hashes[i]))
            {
                return true;
            }
        }

        return false;
    }

    private static Task BackoffAsync(int attempt, CancellationToken cancellationToken) =>
        attempt < 2 ? Task.CompletedTask : Task.Delay(Random.Shared.Next(1, 2 << Math.Min(attempt, 5)), cancellationToken);

    [LoggerMessage(EventId = 2001, Level = LogLevel.Information, Message = "Session {SessionId} opened for client {ClientId}; {Evicted} older session(s) ended by the per-user limit.")]
    private static partial void LogSessionOpened(ILogger logger, string sessionId, string clientId, int evicted);

    [LoggerMessage(EventId = 2002, Level = LogLevel.Warning, Message = "Refresh token reuse in session {SessionId} (client {ClientId}): the session is revoked.")]
    private static partial void LogReuseDetected(ILogger logger, string sessionId, string clientId);

    [LoggerMessage(EventId = 2003, Level = LogLevel.Warning, Message = "Client {ClientId} presented a refresh token of session {SessionId} issued to another client.")]
    private static partial void LogCrossClientRefresh(ILogger logger, string sessionId, string clientId);

    [LoggerMessage(EventId = 2006, Level = LogLevel.Warning, Message = "Refresh of DPoP-bound session {SessionId} (client {ClientId}) without a proof of its key: refused, nothing changed.")]
    private static partial void LogProofKeyMismatch(ILogger logger, string sessionId, string clientId);

    [LoggerMessage(EventId = 2004, Level = LogLevel.Information, Message = "Session {SessionId} revoked ({Reason}).")]
    private static partial void LogSessionRevoked(ILogger logger, string sessionId, string reason);

    [LoggerMessage(EventId = 2005, Level = LogLevel.Information, Message = "{Count} session(s) of a user revoked ({Reason}).")]
    private static partial void LogUserSessionsRevoked(ILogger logger, int count, string reason);
}
