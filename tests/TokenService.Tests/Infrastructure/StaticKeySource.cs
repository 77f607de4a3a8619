using Microsoft.IdentityModel.Tokens;
using TokenService.Jwt;

namespace TokenService.Tests.Infrastructure;

/// <summary>A fixed set of verification keys by kid, for validators under test.</summary>
public sealed class StaticKeySource(params TokenService.Jwt.PublicJsonWebKey[] keys) : IIssuerKeySource
{
    private readonly Dictionary<string, SecurityKey[]> _byKid = keys
        .Select(k => (k.Kid!, Key: k.ToSecurityKey()))
        .Where(k => k.Key is not null)
        .ToDictionary(k => k.Item1, k => new SecurityKey[] { k.Key! }, StringComparer.Ordinal);

    public ValueTask<KeyResolution> ResolveAsync(string? kid, CancellationToken cancellationToken) =>
        ValueTask.FromResult(KeysFor(kid).Length > 0 ? KeyResolution.Found : KeyResolution.Unknown);

    public SecurityKey[] KeysFor(string? kid) => kid is not null && _byKid.TryGetValue(kid, out var key) ? key : [];
}
