using Microsoft.Extensions.Logging;
using TokenService.Configuration;
using TokenService.Jwt;

namespace TokenService.Keys;

/// <summary>A stored key version: lifecycle facts and public key.</summary>
public sealed record StoredSigningKey(KeyVersionInfo Info, string Algorithm, PublicJsonWebKey PublicJwk);

/// <summary>
/// A key version its provider has created but not yet stored with an activation time: no instance loads,
/// publishes or signs with it until <see cref="LifecycleSigningKeyService"/> publishes it.
/// </summary>
public sealed record NewSigningKey(string ProviderKeyId, string Algorithm, PublicJsonWebKey PublicJwk, DateTimeOffset CreatedAt);

/// <summary>
/// The part every key provider shares: the published key set is derived by <see cref="KeyLifecyclePolicy"/> from
/// the stored keys and cached until the next lifecycle transition or reload, so JWKS and validation cost no
/// provider call; the rotation check removes, creates (verifying the new key's first signature with its public
/// key before it is published), publishes the new key with an activation time read once it exists, and reloads.
/// </summary>
public abstract partial class LifecycleSigningKeyService : ISigningKeyService
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private volatile Snapshot? _snapshot;
    private IReadOnlyList<StoredSigningKey>? _stored;
    private DateTimeOffset _loadedAt;

    private sealed record Snapshot(SigningKeySet Set, DateTimeOffset ValidUntil);

    protected LifecycleSigningKeyService(KeysOptions options, TimeProvider time, ILogger logger)
    {
        Options = options;
        Time = time;
        Logger = logger;
    }

    protected KeysOptions Options { get; }
    protected TimeProvider Time { get; }
    protected ILogger Logger { get; }

    /// <summary>How often stored keys are re-read, to learn keys other instances created.</summary>
    protected abstract TimeSpan ReloadInterval { get; }

    /// <summary>
    /// How much earlier than when it exists the first key is recorded as activated (it signs at once either way), so
    /// that its first rotation comes that much sooner: several vaults created on one day stagger their rotations
    /// instead of all rotating on the same day. Zero for one provider.
    /// </summary>
    protected virtual TimeSpan FirstKeyRotationLead => TimeSpan.Zero;

    protected abstract Task<IReadOnlyList<StoredSigningKey>> LoadKeysAsync(CancellationToken cancellationToken);

    /// <summary>Creates a key version that is not published yet: it has no activation time, so no instance loads it.</summary>
    protected abstract Task<NewSigningKey> CreateKeyAsync(CancellationToken cancellationToken);

    /// <summary>Stores a created key's activation time, which publishes it: from then on every instance loads it.</summary>
    protected abstract Task<StoredSigningKey> PublishKeyAsync(NewSigningKey key, DateTimeOffset activatesAt, CancellationToken cancellationToken);

    protected abstract Task RemoveKeyAsync(KeyVersionInfo key, CancellationToken cancellationToken);

    public abstract ValueTask<byte[]> SignAsync(SigningKey key, ReadOnlyMemory<byte> signingInput, CancellationToken cancellationToken);

    /// <summary>The active key signs (a provider with several vaults chooses among them).</summary>
    public virtual ValueTask<SignedInput> SignWithActiveKeyAsync(Func<SigningKey, ReadOnlyMemory<byte>> buildSigningInput, CancellationToken cancellationToken) =>
        ActiveKeySigning.SignAsync(this, buildSigningInput, cancellationToken);

    public ValueTask<SigningKeySet> GetKeySetAsync(CancellationToken cancellationToken)
    {
        var snapshot = _snapshot;
        return snapshot is not null && Time.GetUtcNow() < snapshot.ValidUntil
            ? ValueTask.FromResult(snapshot.Set)
            : new ValueTask<SigningKeySet>(RefreshAsync(forceReload: false, cancellationToken));
    }

    private static string KidOf(IReadOnlyList<StoredSigningKey> stored, KeyVersionInfo info) =>
        stored.FirstOrDefault(k => k.Info.ProviderKeyId == info.ProviderKeyId)?.PublicJwk.ComputeThumbprint() ?? "(unknown)";

    public Task<KeyRotationResult> RunRotationCheckAsync(CancellationToken cancellationToken) =>
        ChangeKeysAsync(async (stored, plan, actions) =>
        {
            foreach (var key in plan.ToRemove)
            {
                await RemoveKeyAsync(key, cancellationToken);
                actions.Add($"removed kid {KidOf(stored, key)} (provider key {key.ProviderKeyId})");
            }

            if (plan.CreateKeyActivatingAt is { } plannedActivation)
            {
                // Validators can learn the key only once it exists, so its activation is measured from the clock
                // read after creating it (seconds for an HSM key) and checking it, not from the time read before:
                // otherwise the time creation took would come out of the propagation time.
                // The first key, and a key replacing one whose expiry ended its signing with no successor, sign at once.
                var isFirstKey = stored.Count == 0;
                var signsAtOnce = isFirstKey || !plan.Published.Any(p => p.State == SigningKeyState.Active);
                actions.Add(await CreatePublishedKeyAsync(
                    existsAt => KeyLifecyclePolicy.ActivationOfNewKey(plannedActivation, signsAtOnce, existsAt, Options) - (isFirstKey ? FirstKeyRotationLead : TimeSpan.Zero),
                    cancellationToken));
            }

            return null;
        }, cancellationToken);

    public Task<KeyRotationResult> RotateNowAsync(bool immediate, CancellationToken cancellationToken) =>
        ChangeKeysAsync(async (stored, plan, actions) =>
        {
            if (!immediate && plan.Published.FirstOrDefault(p => p.State == SigningKeyState.Pending) is { } pending)
            {
                // Idempotent: a key already published ahead of use is the rotation asked for.
                return $"kept pending kid {KidOf(stored, pending.Key)} activating {pending.Key.ActivatesAt:O}";
            }

            // The cap holds for rotations on demand only (the schedule and revocation are never refused): checked on
            // the keys just loaded, under the gate, before anything is created.
            EnsureRotationAllowed(plan.Published.Count, plan.Published.Any(p => p.State == SigningKeyState.Pending), immediate,
                plan.Published.Where(p => p.State == SigningKeyState.Retired).Select(p => (KidOf(stored, p.Key), p.RemoveAt)));

            // Published ahead of use as in a scheduled rotation, or (immediate) signing as soon as it exists: the
            // compromise case, where continuing to sign with the old key is worse than validators learning the new
            // one on their refetch for an unknown kid.
            actions.Add(await CreatePublishedKeyAsync(existsAt => immediate ? existsAt : existsAt + Options.PropagationTime, cancellationToken));
            return null;
        }, cancellationToken);

    /// <summary>
    /// Throws <see cref="KeyLimitReachedException"/> when an operator's rotation would go beyond
    /// <see cref="KeysOptions.MaxPublishedKeys"/> (see <see cref="KeyLifecyclePolicy.PublishedAfterRotation"/>). With
    /// several vaults every vault is checked on its served key set before any rotates, so that a refusal changes nothing.
    /// </summary>
    public async Task EnsureRotationAllowedAsync(bool immediate, CancellationToken cancellationToken)
    {
        var set = await GetKeySetAsync(cancellationToken);
        var hasPending = set.Published.Any(k => k.State == SigningKeyState.Pending);
        if (!immediate && hasPending)
        {
            return; // kept: nothing is created
        }

        EnsureRotationAllowed(set.Published.Count, hasPending, immediate,
            set.Published.Where(k => k.State == SigningKeyState.Retired).Select(k => (k.Kid, k.RemoveAt)));
    }

    private void EnsureRotationAllowed(int published, bool hasPending, bool immediate, IEnumerable<(string Kid, DateTimeOffset? RemoveAt)> retired)
    {
        var after = KeyLifecyclePolicy.PublishedAfterRotation(published, hasPending, immediate);
        if (after > Options.MaxPublishedKeys)
        {
            var list = retired.ToList();
            throw new KeyLimitReachedException(after, Options.MaxPublishedKeys, list.Min(r => r.RemoveAt), [.. list.Select(r => r.Kid)]);
        }
    }

    public Task<KeyRotationResult> RevokeAsync(string kid, CancellationToken cancellationToken) =>
        ChangeKeysAsync(async (stored, plan, actions) =>
        {
            var target = stored.FirstOrDefault(k => string.Equals(k.PublicJwk.ComputeThumbprint(), kid, StringComparison.Ordinal));
            if (target is null)
            {
                return $"no published key has kid {kid} (unknown or already revoked)";
            }

            if (plan.Published.Any(p => p.State == SigningKeyState.Active && p.Key.ProviderKeyId == target.Info.ProviderKeyId))
            {
                // Signing must go on without the revoked key: a new key signs from the moment it exists.
                actions.Add(await CreatePublishedKeyAsync(existsAt => existsAt, cancellationToken));
            }

            // Removal (local: deleted; Key Vault: version disabled) is permanent: loads and the scheduled rotation
            // never see the key again, so it leaves the JWKS and verifies no token from now on.
            await RemoveKeyAsync(target.Info, cancellationToken);
            actions.Add($"revoked kid {kid} (provider key {target.Info.ProviderKeyId})");
            return null;
        }, cancellationToken);

    /// <summary>
    /// One change of the stored keys, serialized with every other on this instance: loads the stored keys, derives
    /// the plan at this time, lets <paramref name="change"/> act (recording what it did, or returning why nothing
    /// was needed), then reloads and rebuilds the served key set.
    /// </summary>
    private async Task<KeyRotationResult> ChangeKeysAsync(
        Func<IReadOnlyList<StoredSigningKey>, KeyLifecyclePlan, List<string>, Task<string?>> change, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            var stored = await LoadKeysAsync(cancellationToken);
            var plan = KeyLifecyclePolicy.Evaluate(stored.Select(k => k.Info).ToList(), Time.GetUtcNow(), Options);
            var actions = new List<string>();
            var unchanged = await change(stored, plan, actions);
            var result = await CompleteAsync(stored, actions, cancellationToken);
            return !result.Changed && unchanged is not null ? result with { Summary = unchanged } : result;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Creates a key, checks its first signature, then publishes it with the activation derived from when it exists.</summary>
    private async Task<string> CreatePublishedKeyAsync(Func<DateTimeOffset, DateTimeOffset> activationFromExistence, CancellationToken cancellationToken)
    {
        var created = await CreateKeyAsync(cancellationToken);
        await VerifyFirstSignatureAsync(created, cancellationToken);
        var published = await PublishKeyAsync(created, activationFromExistence(Time.GetUtcNow()), cancellationToken);

        // Operators match keys by the kid of JWKS and tokens (RFC 7638 thumbprint), not the provider's id.
        return $"created kid {published.PublicJwk.ComputeThumbprint()} (provider key {published.Info.ProviderKeyId}) activating {published.Info.ActivatesAt:O}";
    }

    /// <summary>Reloads after a change (or keeps what was loaded) and rebuilds the served snapshot.</summary>
    private async Task<KeyRotationResult> CompleteAsync(IReadOnlyList<StoredSigningKey> stored, List<string> actions, CancellationToken cancellationToken)
    {
        _stored = actions.Count > 0 ? await LoadKeysAsync(cancellationToken) : stored;
        _loadedAt = Time.GetUtcNow();
        _snapshot = Build(_stored, _loadedAt);
        return new KeyRotationResult(actions.Count > 0, actions.Count > 0 ? string.Join("; ", actions) : "no change");
    }

    private async Task<SigningKeySet> RefreshAsync(bool forceReload, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            var now = Time.GetUtcNow();
            if (!forceReload && _snapshot is { } current && now < current.ValidUntil)
            {
                return current.Set;
            }

            if (_stored is null || now - _loadedAt >= ReloadInterval)
            {
                try
                {
                    _stored = await LoadKeysAsync(cancellationToken);
                    _loadedAt = now;
                }
                catch (DependencyUnavailableException ex) when (_stored is not null)
                {
                    // Keep serving the cached keys (JWKS, validation); try again shortly, not before the provider's
                    // Retry-After (a throttled vault), so that the reload does not come back while it still throttles.
                    LogReloadFailed(Logger);
                    var retryIn = ex.RetryAfter is { } after && after > TimeSpan.FromSeconds(5) ? after : TimeSpan.FromSeconds(5);
                    _snapshot = Build(_stored, now) with { ValidUntil = now + retryIn };
                    return _snapshot.Set;
                }
            }

            if (_stored.Count == 0 || NoKeyMaySign(_stored, now))
            {
                // No key yet (first start): create it now rather than wait for the timer. Every caller that finds no
                // key comes here, not only the one that loaded the empty list: the others would otherwise build an
                // empty key set and answer 503 while the first key is being created. The check is serialized and
                // idempotent, so only the first creates a key.
                _gate.Release();
                try
                {
                    await RunRotationCheckAsync(cancellationToken);
                }
                finally
                {
                    await _gate.WaitAsync(cancellationToken);
                }

                return _snapshot!.Set;
            }

            _snapshot = Build(_stored, now);
            return _snapshot.Set;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Keys exist, yet none may sign now (the active one's expiry came too near, with no successor): one is created at once.</summary>
    private bool NoKeyMaySign(IReadOnlyList<StoredSigningKey> stored, DateTimeOffset now) =>
        KeyLifecyclePolicy.Evaluate(stored.Select(k => k.Info).ToList(), now, Options) is { CreateKeyActivatingAt: { } create } plan
        && create <= now
        && !plan.Published.Any(p => p.State == SigningKeyState.Active);

    /// <summary>
    /// The provider found <paramref name="disabledKey"/> disabled when it signed with it (Key Vault: 403
    /// <c>KeyDisabled</c>): another instance revoked it, and this instance's cached set is stale until its next reload,
    /// up to <see cref="ReloadInterval"/> away. Reloads now, unless a concurrent caller already has (the active key is
    /// no longer <paramref name="disabledKey"/>), so that a burst of requests costs one reload; returns the active key
    /// of the reloaded set (null when none is active).
    /// </summary>
    protected async Task<SigningKey?> ReloadAfterKeyDisabledAsync(SigningKey disabledKey, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            if (_snapshot?.Set.Active is { } active && active.ProviderKeyId != disabledKey.ProviderKeyId)
            {
                return active;
            }

            var now = Time.GetUtcNow();
            _stored = await LoadKeysAsync(cancellationToken);
            _loadedAt = now;
            _snapshot = Build(_stored, now);
            var current = _snapshot.Set.Active;
            LogActiveKeyDisabled(Logger, disabledKey.Kid, current?.Kid ?? "(none)");
            return current;
        }
        finally
        {
            _gate.Release();
        }
    }

    private Snapshot Build(IReadOnlyList<StoredSigningKey> stored, DateTimeOffset now)
    {
        var plan = KeyLifecyclePolicy.Evaluate(stored.Select(k => k.Info).ToList(), now, Options);
        var byId = stored.ToDictionary(k => k.Info.ProviderKeyId, StringComparer.Ordinal);
        var keys = plan.Published.Select(p =>
        {
            var s = byId[p.Key.ProviderKeyId];
            return new SigningKey(s.Info.ProviderKeyId, s.Algorithm, s.PublicJwk, p.State, s.Info.CreatedAt)
            {
                ActivatesAt = s.Info.ActivatesAt,
                RetiresAt = p.RetiresAt,
                RemoveAt = p.RemoveAt,
            };
        }).ToList();
        var validUntil = _loadedAt + ReloadInterval;
        if (plan.NextTransition is { } next && next < validUntil)
        {
            validUntil = next;
        }

        return new Snapshot(new SigningKeySet(keys, now), validUntil);
    }

    /// <summary>Checked before the key is published, so that a key whose signatures do not verify is never in a JWKS.</summary>
    private async Task VerifyFirstSignatureAsync(NewSigningKey created, CancellationToken cancellationToken)
    {
        var key = new SigningKey(created.ProviderKeyId, created.Algorithm, created.PublicJwk, SigningKeyState.Pending, created.CreatedAt);
        var probe = System.Text.Encoding.ASCII.GetBytes("eyJhbGciOiJwcm9iZSJ9.cHJvYmU");
        var signature = await SignAsync(key, probe, cancellationToken);
        if (!key.VerifySignature(probe, signature))
        {
            await RemoveKeyAsync(new KeyVersionInfo(created.ProviderKeyId, created.CreatedAt, created.CreatedAt), cancellationToken);
            throw new InvalidOperationException($"The new signing key {created.ProviderKeyId} produced a signature its public key does not verify; it was removed.");
        }
    }

    [LoggerMessage(EventId = 4003, Level = LogLevel.Warning, Message = "Reloading signing keys failed; cached keys stay in use.")]
    private static partial void LogReloadFailed(ILogger logger);

    [LoggerMessage(EventId = 4012, Level = LogLevel.Warning, Message = "The active signing key {Kid} is disabled in the key store (revoked or removed by another instance); keys reloaded, now signing with {NewKid}.")]
    private static partial void LogActiveKeyDisabled(ILogger logger, string kid, string newKid);
}
