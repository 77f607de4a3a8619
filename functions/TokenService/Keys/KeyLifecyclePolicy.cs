using TokenService.Configuration;

namespace TokenService.Keys;

/// <summary>
/// A stored key version as the lifecycle sees it: when it was made, when it starts signing and, when its store says so,
/// when it expires (Key Vault's <c>exp</c>: no signing on or after it).
/// </summary>
public sealed record KeyVersionInfo(string ProviderKeyId, DateTimeOffset CreatedAt, DateTimeOffset ActivatesAt, DateTimeOffset? ExpiresAt = null);

/// <summary>A key's derived state at one instant.</summary>
public sealed record KeyVersionState(KeyVersionInfo Key, SigningKeyState State, DateTimeOffset? RetiresAt, DateTimeOffset? RemoveAt);

/// <summary>What the lifecycle check must do, and the published keys now.</summary>
public sealed record KeyLifecyclePlan(
    IReadOnlyList<KeyVersionState> Published,
    IReadOnlyList<KeyVersionInfo> ToRemove,
    DateTimeOffset? CreateKeyActivatingAt,
    DateTimeOffset? NextTransition);

/// <summary>
/// The key lifecycle (docs/api.md, "Keys and the JWKS") as a pure function of the stored keys, the time and <see cref="KeysOptions"/>.
/// Each key carries only its activation time (set when it is created), so every instance derives the same
/// states without coordination: the key with the latest activation time not in the future is active; later
/// ones are pending (published, not signing); earlier ones are retired from their successor's activation and
/// removed <see cref="KeysOptions.RetentionTime"/> after that. The next key is created
/// <see cref="KeysOptions.PropagationTime"/> before the active key reaches <see cref="KeysOptions.RotationInterval"/>.
/// When two instances create a pending key at once, the one activating last wins and the other is removed
/// before it ever signs. A key with an expiry signs only until <see cref="SignsUntil"/>, so that every token it signs
/// expires before it does; the next key is planned to take over by then.
/// </summary>
public static class KeyLifecyclePolicy
{
    /// <summary>
    /// The last moment <paramref name="key"/> may sign: its expiry less <see cref="KeysOptions.RetentionTime"/>, which is
    /// at least the access-token lifetime plus the JWKS cache age (validated at start-up), so a token it signs expires,
    /// and leaves every cache, before the key does. Unbounded without an expiry.
    /// </summary>
    public static DateTimeOffset SignsUntil(KeyVersionInfo key, KeysOptions options) =>
        key.ExpiresAt is { } expires ? expires - options.RetentionTime : DateTimeOffset.MaxValue;

    public static KeyLifecyclePlan Evaluate(IReadOnlyList<KeyVersionInfo> keys, DateTimeOffset now, KeysOptions options)
    {
        var ordered = keys
            .OrderBy(k => k.ActivatesAt).ThenBy(k => k.CreatedAt).ThenBy(k => k.ProviderKeyId, StringComparer.Ordinal)
            .ToList();
        var toRemove = new List<KeyVersionInfo>();

        // Concurrent creations: of the pending keys only the one activating last survives.
        var pending = ordered.Where(k => k.ActivatesAt > now).ToList();
        foreach (var loser in pending.Take(pending.Count - 1))
        {
            toRemove.Add(loser);
            ordered.Remove(loser);
        }

        var activeIndex = ordered.FindLastIndex(k => k.ActivatesAt <= now);

        // The latest activated key stops signing once its expiry is too near for its tokens (SignsUntil): it is retired
        // then, with nothing active until a new key exists.
        var activeExpired = activeIndex >= 0 && SignsUntil(ordered[activeIndex], options) <= now;
        var published = new List<KeyVersionState>();
        DateTimeOffset? next = null;
        void Next(DateTimeOffset t)
        {
            if (t > now && (next is null || t < next))
            {
                next = t;
            }
        }

        for (var i = 0; i < ordered.Count; i++)
        {
            var key = ordered[i];
            if (i == activeIndex && !activeExpired)
            {
                published.Add(new KeyVersionState(key, SigningKeyState.Active, null, null));
                if (key.ExpiresAt is not null)
                {
                    Next(SignsUntil(key, options));
                }
            }
            else if (i > activeIndex)
            {
                published.Add(new KeyVersionState(key, SigningKeyState.Pending, null, null));
                Next(key.ActivatesAt);
            }
            else
            {
                var successor = i + 1 < ordered.Count ? ordered[i + 1].ActivatesAt : DateTimeOffset.MaxValue;
                var signsUntil = SignsUntil(key, options);
                var retiresAt = signsUntil < successor ? signsUntil : successor;
                var removeAt = retiresAt + options.RetentionTime;
                if (now >= removeAt)
                {
                    toRemove.Add(key);
                }
                else
                {
                    published.Add(new KeyVersionState(key, SigningKeyState.Retired, retiresAt, removeAt));
                    Next(removeAt);
                }
            }
        }

        DateTimeOffset? create = null;
        var active = activeIndex >= 0 ? ordered[activeIndex] : null;
        var hasPending = ordered.Count > activeIndex + 1;
        if (ordered.Count == 0)
        {
            create = now; // the first key signs at once: nothing can have cached an older JWKS
        }
        else if (activeExpired)
        {
            create = now; // nothing may sign: a new key signs at once, as after a revoke
        }
        else if (active is not null && !hasPending)
        {
            // Rotated at its age, or earlier when its expiry comes first: the successor then takes over when it may no
            // longer sign (an expiry set by an Azure Policy maximum, or by hand).
            var rotateAt = active.ActivatesAt + options.RotationInterval;
            if (SignsUntil(active, options) < rotateAt)
            {
                rotateAt = SignsUntil(active, options);
            }

            var publishAt = rotateAt - options.PropagationTime;
            if (now >= publishAt)
            {
                create = rotateAt > now + options.PropagationTime ? rotateAt : now + options.PropagationTime;
            }
            else
            {
                Next(publishAt);
            }
        }

        return new KeyLifecyclePlan(published, toRemove, create, next);
    }

    /// <summary>
    /// Most keys the schedule alone publishes at once: the active key, the next one published ahead of use, and the keys
    /// retired every <see cref="KeysOptions.RotationInterval"/> that are still within <see cref="KeysOptions.RetentionTime"/>.
    /// </summary>
    public static int KeysPublishedBySchedule(KeysOptions options) =>
        2 + (int)Math.Ceiling(options.RetentionTime.Ticks / (double)options.RotationInterval.Ticks);

    /// <summary>
    /// How many keys an operator's rotation leaves published, counting the slot the schedule will need: a new key added
    /// to <paramref name="published"/>, plus, when it signs at once and no key is pending, the next key the schedule
    /// publishes ahead of use later (retired keys still count: they verify unexpired tokens). Checked against
    /// <see cref="KeysOptions.MaxPublishedKeys"/> so that rotations on demand can never leave the scheduled rotation
    /// without room.
    /// </summary>
    public static int PublishedAfterRotation(int published, bool hasPending, bool immediate) =>
        published + 1 + (immediate && !hasPending ? 1 : 0);

    /// <summary>
    /// The activation time of a key created for <see cref="KeyLifecyclePlan.CreateKeyActivatingAt"/>, fixed once
    /// the key exists (<paramref name="existsAt"/>, read after creating it): never before the planned time, and
    /// never less than <see cref="KeysOptions.PropagationTime"/> after the key exists, because no validator can
    /// learn a key before then and creating one can take seconds. The first key signs as soon as it exists: no
    /// cache can hold an older key set.
    /// </summary>
    public static DateTimeOffset ActivationOfNewKey(DateTimeOffset planned, bool isFirstKey, DateTimeOffset existsAt, KeysOptions options)
    {
        var earliest = isFirstKey ? existsAt : existsAt + options.PropagationTime;
        return earliest > planned ? earliest : planned;
    }
}
