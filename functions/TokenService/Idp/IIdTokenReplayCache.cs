namespace TokenService.Idp;

/// <summary>
/// Remembers ID tokens already exchanged so that one cannot be exchanged twice (replay) before it expires.
/// The key is a hash of the token's signing input. Unreachable store → <see cref="DependencyUnavailableException"/>.
/// </summary>
public interface IIdTokenReplayCache
{
    /// <summary>
    /// Records <paramref name="key"/> if absent (insert-if-not-exists) and returns true; returns false when it
    /// was already recorded. Entries may be deleted after <paramref name="expiresAt"/>.
    /// </summary>
    ValueTask<bool> TryAddAsync(string key, DateTimeOffset expiresAt, CancellationToken cancellationToken);

    /// <summary>Forgets a key recorded by a request that then failed to open its session, so the user can retry.</summary>
    ValueTask RemoveAsync(string key, CancellationToken cancellationToken);
}
