using Microsoft.IdentityModel.Tokens;

namespace TokenService.Jwt;

/// <summary>
/// The verification keys of one trusted issuer (the IdP, an SSF transmitter, our own service). Implementations cache;
/// a warm lookup completes synchronously. <see cref="JwtValidator"/> first awaits <see cref="ResolveAsync"/> (which may
/// fetch, rate-limited), then hands <see cref="KeysFor"/> to Microsoft.IdentityModel as its
/// <c>IssuerSigningKeyResolver</c>, which is synchronous and must never do I/O.
/// </summary>
public interface IIssuerKeySource
{
    /// <summary>
    /// Makes the key for <paramref name="kid"/> (or the only key when <paramref name="kid"/> is null and exactly one is
    /// known) available to <see cref="KeysFor"/>, or says whether it is unknown or the source is unreachable.
    /// </summary>
    ValueTask<KeyResolution> ResolveAsync(string? kid, CancellationToken cancellationToken);

    /// <summary>The cached key for <paramref name="kid"/> as a one-element array (no allocation), or an empty one.</summary>
    SecurityKey[] KeysFor(string? kid);
}

public enum KeyResolution
{
    Found,
    Unknown,
    Unavailable,
}
