namespace TokenService.Dpop;

/// <summary>
/// Remembers the <c>jti</c> of every accepted DPoP proof for as long as the proof could be accepted, so that one proof
/// is used once (RFC 9449 §11.1). It lives in the session store's backend, so every instance of a scaled-out app sees
/// the same entries: memory for the embedded default, Table Storage otherwise. An unreachable store throws
/// the host's dependency-unavailable exception (the request fails closed with 503).
/// </summary>
public interface IDpopReplayCache
{
    /// <summary>
    /// Records <paramref name="key"/> if absent and returns true; false when it is already recorded (a replay). A retried
    /// insert whose first try was stored must still return true. The entry may be deleted after <paramref name="expiresAt"/>.
    /// </summary>
    ValueTask<bool> TryAddAsync(string key, DateTimeOffset expiresAt, CancellationToken cancellationToken);
}
