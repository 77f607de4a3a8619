using Microsoft.IdentityModel.Tokens;
using TokenService.Jwt;

namespace TokenService.Keys;

/// <summary>
/// Resolves our own published keys by <c>kid</c> from the cached key set (no I/O when warm). The set last seen by
/// <see cref="ResolveAsync"/> answers <see cref="KeysFor"/>, IdentityModel's synchronous key lookup that follows it: a
/// key revoked in between is then still found for that one validation, as it would have been a moment earlier.
/// </summary>
public sealed class SigningKeyResolver(ISigningKeyService keys) : IIssuerKeySource
{
    private volatile SigningKeySet _current = SigningKeySet.Empty;

    public ValueTask<KeyResolution> ResolveAsync(string? kid, CancellationToken cancellationToken)
    {
        var pending = keys.GetKeySetAsync(cancellationToken);
        return pending.IsCompletedSuccessfully ? ValueTask.FromResult(Remember(pending.Result, kid)) : SlowAsync(pending, kid);

        async ValueTask<KeyResolution> SlowAsync(ValueTask<SigningKeySet> pending, string? kid) => Remember(await pending, kid);
    }

    public SecurityKey[] KeysFor(string? kid) =>
        kid is not null && _current.Find(kid) is { } key ? key.VerificationKeys : [];

    // Our tokens always carry a kid; a token without one is not ours.
    private KeyResolution Remember(SigningKeySet set, string? kid)
    {
        _current = set;
        return kid is not null && set.Find(kid) is not null ? KeyResolution.Found : KeyResolution.Unknown;
    }
}
