using TokenService.Keys;

namespace TokenService.Azure.KeyVault;

/// <summary>
/// Where one signature is made, and what happens when a vault throttles or fails, within the request's budget (its
/// <see cref="CancellationToken"/>, which <c>EndpointInvoker</c> cancels when the dependency budget is spent):
/// <list type="bullet">
/// <item>the least-loaded vault is chosen: not in a 429 backoff, not recently failed, most limiter headroom;</item>
/// <item>a 429 opens (or joins) that vault's shared backoff window; the request moves to another vault, or with none
/// waits for the window and tries again: never longer than <see cref="KeyVaultSigning.MaxWait"/>, answered 503 with
/// <c>Retry-After</c> at once when the window is longer;</item>
/// <item>a 5xx, transport failure or (with several vaults) a call slower than <c>Keys:SignAttemptTimeout</c>
/// moves the request to another vault; with one vault it is the caller's 503, as before;</item>
/// <item>a 403 <c>KeyDisabled</c> or a 404 (the key was revoked by another instance, or deleted; this one's key set is stale) reloads
/// that vault's keys once and signs with its current active key, within the same budget; no active key after the
/// reload is that vault's failure, as above.</item>
/// </list>
/// Nothing is committed before the signature exists, so every failure leaves nothing half-written.
/// </summary>
internal static class KeyVaultSignRouter
{
    /// <summary>Sign calls one request may make: the 1, 2, 4, 8, 16 s backoff sequence's retries, plus failovers.</summary>
    private const int MaxCalls = 6;

    /// <summary>One vault able to sign for this request: its service and its active key.</summary>
    internal readonly record struct Candidate(KeyVaultSigningKeyService Vault, SigningKey Key);

    public static async ValueTask<SignedInput> SignAsync(
        IReadOnlyList<Candidate> candidates, Func<SigningKey, ReadOnlyMemory<byte>> buildSigningInput, KeyVaultSigning signing, CancellationToken cancellationToken)
    {
        if (candidates.Count == 0)
        {
            throw new DependencyUnavailableException("keyvault", "No vault has an active signing key.");
        }

        var several = candidates.Count > 1;
        var failed = several ? new bool[candidates.Count] : null;
        bool[]? reloaded = null;
        DependencyUnavailableException? last = null;
        SigningKey? builtFor = null;
        ReadOnlyMemory<byte> signingInput = default;

        // The limiter permit this request holds and its vault: a call that drew a 429 was not counted by the vault, so
        // its retry there after the backoff window spends the same permit rather than queueing for another behind
        // requests that have not been tried yet (with one vault that queue is this instance's whole share). A permit
        // no call spent goes back to its vault's limiter (VaultSignThrottle.Return) when the request leaves.
        var permitFor = -1;
        VaultSignThrottle.Permit permit = default;
        try
        {
            for (var calls = 0; calls < MaxCalls;)
            {
                var index = Choose(candidates, failed);
                if (index < 0)
                {
                    throw last ?? new DependencyUnavailableException("keyvault", "Every vault failed.");
                }

                var (vault, key) = candidates[index];
                var throttle = vault.Throttle;
                var wait = throttle.BackoffRemaining;
                if (wait > TimeSpan.Zero)
                {
                    // Every vault is in a backoff window (Choose prefers one that is not): wait for the shortest, unless
                    // no request could wait that long: then answer now, with the window as Retry-After.
                    if (wait > signing.MaxWait)
                    {
                        throw new DependencyUnavailableException("keyvault", $"Key Vault is throttling for another {wait.TotalSeconds:0.#} s.", wait, last);
                    }

                    await throttle.WaitForBackoffAsync(wait, cancellationToken);
                    continue;
                }

                if (permitFor != index)
                {
                    if (permitFor >= 0)
                    {
                        candidates[permitFor].Vault.Throttle.Return(permit);
                        permitFor = -1;
                    }

                    if (await throttle.AcquireAsync(cancellationToken) is not { } acquired)
                    {
                        throw new DependencyUnavailableException("keyvault", "The vault's sign queue is full.", throttle.Window);
                    }

                    (permit, permitFor) = (acquired, index);
                }

                if (throttle.BackoffRemaining is var opened && opened > TimeSpan.Zero)
                {
                    // A 429 arrived while this request queued. With other vaults, choose again; with one, wait for the
                    // window holding the permit: taking another after it would spend two of this instance's allowance on
                    // one sign, and the allowance is this instance's share of the vault.
                    if (several)
                    {
                        continue;
                    }

                    if (opened > signing.MaxWait)
                    {
                        throw new DependencyUnavailableException("keyvault", $"Key Vault is throttling for another {opened.TotalSeconds:0.#} s.", opened, last);
                    }

                    await throttle.WaitForBackoffAsync(opened, cancellationToken);
                }

                if (!ReferenceEquals(builtFor, key))
                {
                    signingInput = buildSigningInput(key);
                    builtFor = key;
                }

                calls++;
                permitFor = -1; // the call spends the permit, unless the vault throttles it
                using var call = throttle.StartCall();
                try
                {
                    var signature = several
                        ? await SignWithTimeoutAsync(vault, key, signingInput, signing, cancellationToken)
                        : await vault.SignOnceAsync(key, signingInput, cancellationToken);
                    throttle.OnSuccess();
                    return new SignedInput(key, signingInput, signature);
                }
                catch (DependencyUnavailableException ex) when (IsThrottled(ex))
                {
                    var window = throttle.OnThrottled(ex.RetryAfter);
                    permitFor = index;
                    last = new DependencyUnavailableException("keyvault", ex.Message, window, ex.InnerException);
                }
                catch (DependencyUnavailableException ex) when (several)
                {
                    throttle.OnFailed();
                    failed![index] = true;
                    last = ex;
                }
                catch (KeyVaultException ex) when (KeyVaultFaults.IsKeyGone(ex))
                {
                    // Key Vault answers a sign on a disabled version 403 KeyDisabled, and on a deleted one 404: the key was
                    // revoked (disabled) through another instance, or deleted, and this one's cached key set still names it.
                    // Not an outage: reload once and sign with the vault's current key; the signing input is rebuilt for it
                    // (its kid goes in the header).
                    reloaded ??= new bool[candidates.Count];
                    var current = reloaded[index] ? null : await vault.ActiveKeyAfterDisabledAsync(key, cancellationToken);
                    reloaded[index] = true;
                    if (current is null || current.ProviderKeyId == key.ProviderKeyId)
                    {
                        var unavailable = new DependencyUnavailableException("keys", "The active signing key is disabled or deleted in Key Vault and no other key of the vault is active.", null, ex);
                        if (!several)
                        {
                            throw unavailable;
                        }

                        failed![index] = true;
                        last = unavailable;
                        continue;
                    }

                    var replaced = candidates as Candidate[] ?? [.. candidates];
                    replaced[index] = new(vault, current);
                    candidates = replaced;
                }
            }

            throw last ?? new DependencyUnavailableException("keyvault", "Key Vault kept throttling.");
        }
        finally
        {
            if (permitFor >= 0)
            {
                candidates[permitFor].Vault.Throttle.Return(permit);
            }
        }
    }

    /// <summary>Key Vault's 429: the client keeps the status in the inner <see cref="KeyVaultException"/>.</summary>
    internal static bool IsThrottled(DependencyUnavailableException ex) => ex.InnerException is KeyVaultException { Status: 429 };

    /// <summary>A sign call that may take at most <see cref="KeyVaultSigning.AttemptTimeout"/>, so that a hanging vault leaves budget for another.</summary>
    private static async Task<byte[]> SignWithTimeoutAsync(
        KeyVaultSigningKeyService vault, SigningKey key, ReadOnlyMemory<byte> signingInput, KeyVaultSigning signing, CancellationToken cancellationToken)
    {
        using var attempt = new CancellationTokenSource(signing.AttemptTimeout, signing.Time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, attempt.Token);
        try
        {
            return await vault.SignOnceAsync(key, signingInput, linked.Token);
        }
        catch (OperationCanceledException ex) when (attempt.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new DependencyUnavailableException("keyvault", $"Key Vault did not answer within Keys:SignAttemptTimeout ({signing.AttemptTimeout}).", null, ex);
        }
    }

    /// <summary>
    /// The vault to try: of those not failed in this request, the first by (in backoff, recently failed, least headroom),
    /// a vault in backoff ranking by how soon its window ends. -1 when every vault failed.
    /// </summary>
    private static int Choose(IReadOnlyList<Candidate> candidates, bool[]? failed)
    {
        if (candidates.Count == 1)
        {
            return 0;
        }

        var best = -1;
        (bool InBackoff, bool Failed, TimeSpan Wait, long Headroom) bestScore = default;
        for (var i = 0; i < candidates.Count; i++)
        {
            if (failed![i])
            {
                continue;
            }

            var throttle = candidates[i].Vault.Throttle;
            var wait = throttle.BackoffRemaining;
            var score = (InBackoff: wait > TimeSpan.Zero, Failed: throttle.RecentlyFailed, Wait: wait, Headroom: throttle.Headroom);
            if (best < 0 || Better(score, bestScore))
            {
                best = i;
                bestScore = score;
            }
        }

        return best;

        static bool Better((bool InBackoff, bool Failed, TimeSpan Wait, long Headroom) a, (bool InBackoff, bool Failed, TimeSpan Wait, long Headroom) b) =>
            a.InBackoff != b.InBackoff ? !a.InBackoff
            : a.InBackoff ? a.Wait < b.Wait
            : a.Failed != b.Failed ? !a.Failed
            : a.Headroom > b.Headroom;
    }
}

/// <summary>The limits a sign request works within.</summary>
/// <param name="MaxWait">The longest any request may wait for a backoff window: the dependency budget.</param>
/// <param name="AttemptTimeout">With several vaults, how long one call may take before another vault is tried.</param>
/// <param name="Time">The clock of the waits and timeouts.</param>
internal sealed record KeyVaultSigning(TimeSpan MaxWait, TimeSpan AttemptTimeout, TimeProvider Time);
