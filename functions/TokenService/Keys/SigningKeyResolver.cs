using TokenService.Validation.Jose;

namespace TokenService.Keys;

/// <summary>Resolves our own published keys by <c>kid</c> from the cached key set (no I/O when warm).</summary>
public sealed class SigningKeyResolver(ISigningKeyService keys) : IVerificationKeyResolver
{
    public ValueTask<KeyResolution> ResolveAsync(string? kid, CancellationToken cancellationToken)
    {
        var pending = keys.GetKeySetAsync(cancellationToken);
        return pending.IsCompletedSuccessfully ? ValueTask.FromResult(Find(pending.Result, kid)) : SlowAsync(pending, kid);

        static async ValueTask<KeyResolution> SlowAsync(ValueTask<SigningKeySet> pending, string? kid) => Find(await pending, kid);
    }

    // Our tokens always carry a kid; a token without one is not ours.
    private static KeyResolution Find(SigningKeySet set, string? kid) =>
        kid is not null && set.Find(kid) is { } key ? KeyResolution.Found(key.Verifier) : KeyResolution.Unknown;
}
