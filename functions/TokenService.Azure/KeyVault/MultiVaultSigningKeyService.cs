using Microsoft.Extensions.Logging;
using TokenService.Keys;

namespace TokenService.Azure.KeyVault;

/// <summary>
/// Signing across several vaults or Managed HSM pools (<c>Keys:Vaults:N:Uri</c>), each a
/// <see cref="KeyVaultSigningKeyService"/> with its own key, kid, lifecycle and limiter. A vault's limit is per vault
/// (Key Vault: 2,000 HSM signs per 10 s), so N vaults sign N times as fast. The JWKS publishes every vault's published
/// keys; a token is signed by the least-loaded healthy vault's active key, failing over to another vault (another kid)
/// on 429, 5xx or a timeout (<see cref="KeyVaultSignRouter"/>). Each vault rotates on its own schedule, staggered by
/// <see cref="KeyVaultSigningKeyService"/>'s first-key lead so that they do not all rotate on one day.
/// </summary>
public sealed partial class MultiVaultSigningKeyService(IReadOnlyList<KeyVaultSigningKeyService> vaults, ILogger<MultiVaultSigningKeyService> logger)
    : ISigningKeyService, IDisposable
{
    private volatile Merged? _merged;

    /// <summary>The merged key set and the vault sets it was built from, reused while none of them changed.</summary>
    private sealed record Merged(SigningKeySet[] Parts, SigningKeySet Set);

    internal IReadOnlyList<KeyVaultSigningKeyService> Vaults => vaults;

    public ValueTask<SigningKeySet> GetKeySetAsync(CancellationToken cancellationToken)
    {
        // Warm path (JWKS, every validation): every vault serves the very set the merge was built from; no allocation.
        if (_merged is { } merged)
        {
            for (var i = 0; i < vaults.Count; i++)
            {
                var part = vaults[i].GetKeySetAsync(cancellationToken);
                if (!part.IsCompletedSuccessfully || !ReferenceEquals(part.Result, merged.Parts[i]))
                {
                    return new ValueTask<SigningKeySet>(MergeAsync(i, part, cancellationToken));
                }
            }

            return ValueTask.FromResult(merged.Set);
        }

        return new ValueTask<SigningKeySet>(MergeAsync(0, vaults[0].GetKeySetAsync(cancellationToken), cancellationToken));
    }

    /// <summary>Reads every vault's set (<paramref name="pending"/> is vault <paramref name="from"/>'s, already started) and merges them.</summary>
    private async Task<SigningKeySet> MergeAsync(int from, ValueTask<SigningKeySet> pending, CancellationToken cancellationToken)
    {
        var parts = new SigningKeySet[vaults.Count];
        var previous = _merged;
        DependencyUnavailableException? failure = null;
        for (var i = 0; i < vaults.Count; i++)
        {
            try
            {
                parts[i] = i < from ? previous!.Parts[i] : await (i == from ? pending : vaults[i].GetKeySetAsync(cancellationToken));
            }
            catch (DependencyUnavailableException ex)
            {
                // One vault down at start-up (nothing cached yet) does not stop the others signing and validating; its
                // keys join the set once it answers (its own load retries on the next call).
                LogVaultUnavailable(logger, i, ex.Message);
                parts[i] = SigningKeySet.Empty;
                failure = ex;
            }
        }

        if (failure is not null && parts.All(p => p.Published.Count == 0))
        {
            throw failure;
        }

        var set = new SigningKeySet(parts.SelectMany(p => p.Published).ToList(), parts.Max(p => p.LoadedAt));
        if (failure is null)
        {
            _merged = new Merged(parts, set);
        }

        return set;
    }

    public async ValueTask<SignedInput> SignWithActiveKeyAsync(Func<SigningKey, ReadOnlyMemory<byte>> buildSigningInput, CancellationToken cancellationToken)
    {
        var candidates = new List<KeyVaultSignRouter.Candidate>(vaults.Count);
        DependencyUnavailableException? failure = null;
        foreach (var vault in vaults)
        {
            try
            {
                if ((await vault.GetKeySetAsync(cancellationToken)).Active is { } key)
                {
                    candidates.Add(new(vault, key));
                }
            }
            catch (DependencyUnavailableException ex)
            {
                failure = ex;
            }
        }

        if (candidates.Count == 0)
        {
            throw failure ?? new DependencyUnavailableException("keys", "No active signing key.");
        }

        return await KeyVaultSignRouter.SignAsync(candidates, buildSigningInput, vaults[0].Signing, cancellationToken);
    }

    /// <summary>Signs with a given key in the vault that holds it; never another key.</summary>
    public ValueTask<byte[]> SignAsync(SigningKey key, ReadOnlyMemory<byte> signingInput, CancellationToken cancellationToken) =>
        VaultOf(key.ProviderKeyId) is { } vault
            ? vault.SignAsync(key, signingInput, cancellationToken)
            : throw new ArgumentException("The key belongs to no configured vault.", nameof(key));

    /// <summary>Every vault's check, each on its own schedule; one vault failing does not stop the others' rotation.</summary>
    public Task<KeyRotationResult> RunRotationCheckAsync(CancellationToken cancellationToken) =>
        ForEachVaultAsync(vault => vault.RunRotationCheckAsync(cancellationToken));

    /// <summary>
    /// Rotates every vault: after a compromise no vault should keep signing with a key that may be known. Every vault's
    /// key count is checked against <c>Keys:MaxPublishedKeys</c> first, so that a refusal (409) leaves every vault as it
    /// was rather than some rotated and some not; each vault checks again under its own lock when it rotates.
    /// </summary>
    public async Task<KeyRotationResult> RotateNowAsync(bool immediate, CancellationToken cancellationToken)
    {
        foreach (var vault in vaults)
        {
            await vault.EnsureRotationAllowedAsync(immediate, cancellationToken);
        }

        return await ForEachVaultAsync(vault => vault.RotateNowAsync(immediate, cancellationToken));
    }

    /// <summary>Revokes the kid in the vault that publishes it; the other vaults keep their keys.</summary>
    public async Task<KeyRotationResult> RevokeAsync(string kid, CancellationToken cancellationToken)
    {
        for (var i = 0; i < vaults.Count; i++)
        {
            if ((await vaults[i].GetKeySetAsync(cancellationToken)).Find(kid) is not null)
            {
                var result = await vaults[i].RevokeAsync(kid, cancellationToken);
                _merged = null;
                return result with { Summary = $"vault {i}: {result.Summary}" };
            }
        }

        // Not published by any vault (unknown, or already revoked): each vault answers that in its own words.
        return await vaults[0].RevokeAsync(kid, cancellationToken);
    }

    private KeyVaultSigningKeyService? VaultOf(string providerKeyId)
    {
        foreach (var vault in vaults)
        {
            if (vault.Holds(providerKeyId))
            {
                return vault;
            }
        }

        return null;
    }

    private async Task<KeyRotationResult> ForEachVaultAsync(Func<KeyVaultSigningKeyService, Task<KeyRotationResult>> action)
    {
        var summaries = new List<string>(vaults.Count);
        var changed = false;
        Exception? first = null;
        for (var i = 0; i < vaults.Count; i++)
        {
            try
            {
                var result = await action(vaults[i]);
                changed |= result.Changed;
                summaries.Add($"vault {i}: {result.Summary}");
            }
            catch (Exception ex) when (ex is DependencyUnavailableException or KeyVaultException)
            {
                LogVaultCheckFailed(logger, i, ex.Message);
                summaries.Add($"vault {i}: failed ({ex.Message})");
                first ??= ex;
            }
        }

        _merged = null;
        if (first is not null)
        {
            // The others have run; the failure still reaches the caller (503, or the timer's log and next run).
            throw first is DependencyUnavailableException d
                ? new DependencyUnavailableException(d.Dependency, string.Join("; ", summaries), d.RetryAfter, d)
                : new KeyVaultException(string.Join("; ", summaries), first);
        }

        return new KeyRotationResult(changed, string.Join("; ", summaries));
    }

    private static bool Same(SigningKeySet[] a, SigningKeySet[] b)
    {
        for (var i = 0; i < a.Length; i++)
        {
            if (!ReferenceEquals(a[i], b[i]))
            {
                return false;
            }
        }

        return true;
    }

    public void Dispose()
    {
        foreach (var vault in vaults)
        {
            vault.Dispose();
        }
    }

    [LoggerMessage(EventId = 4010, Level = LogLevel.Warning, Message = "Key vault {Vault} is unavailable: {Reason}. The other vaults' keys are served.")]
    private static partial void LogVaultUnavailable(ILogger logger, int vault, string reason);

    [LoggerMessage(EventId = 4011, Level = LogLevel.Error, Message = "The key rotation check of vault {Vault} failed: {Reason}. The other vaults were checked.")]
    private static partial void LogVaultCheckFailed(ILogger logger, int vault, string reason);
}
