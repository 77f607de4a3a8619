using System.Security.Cryptography;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using TokenService.Jwt;

namespace TokenService.Idp;

/// <summary>
/// A stand-in IdP for the embedded defaults in Development only, when no <c>Idp</c> section is configured:
/// it mints ID tokens for any user at <c>POST /dev-idp/id-token</c> so that the token lifecycle can be tried
/// with curl. It is never registered outside Development. Its tokens are created by Microsoft.IdentityModel.
/// </summary>
public sealed class DevelopmentIdp : IIssuerKeySource, IDisposable
{
    public const string Audience = "token-service-dev";

    private static readonly JsonWebTokenHandler Handler = new() { SetDefaultTimesOnTokenCreation = false };

    private readonly RSA _key = RSA.Create(2048);
    private readonly SigningCredentials _signing;
    private readonly SecurityKey[] _verification;
    private readonly string _kid;
    private readonly TimeProvider _time;

    public DevelopmentIdp(string tokenServiceIssuer, TimeProvider time)
    {
        _time = time;
        Issuer = tokenServiceIssuer.TrimEnd('/') + "/dev-idp";
        var jwk = PublicJsonWebKey.FromRsa(_key.ExportParameters(false), JwsAlgorithms.RS256);
        _kid = jwk.ComputeThumbprint();
        Jwk = jwk.WithKid(_kid);
        _verification = [Jwk.ToSecurityKey()!];
        _signing = new SigningCredentials(new RsaSecurityKey(_key) { KeyId = _kid }, SecurityAlgorithms.RsaSha256);
    }

    public string Issuer { get; }
    public PublicJsonWebKey Jwk { get; }

    public ValueTask<KeyResolution> ResolveAsync(string? kid, CancellationToken cancellationToken) =>
        ValueTask.FromResult(kid is null || kid == _kid ? KeyResolution.Found : KeyResolution.Unknown);

    public SecurityKey[] KeysFor(string? kid) => kid is null || kid == _kid ? _verification : [];

    /// <summary>Mints an RS256 ID token for <paramref name="subject"/> valid for five minutes.</summary>
    public string MintIdToken(string subject, string? acr, IReadOnlyList<string> amr)
    {
        var now = _time.GetUtcNow().ToUnixTimeSeconds();
        var claims = new Dictionary<string, object>(StringComparer.Ordinal)
        {
            ["iss"] = Issuer,
            ["sub"] = subject,
            ["aud"] = Audience,
            ["iat"] = now,
            ["nbf"] = now,
            ["exp"] = now + 300,
            ["auth_time"] = now,
            ["jti"] = Base64UrlEncoding.Encode(RandomNumberGenerator.GetBytes(16)),
        };
        if (acr is not null)
        {
            claims["acr"] = acr;
        }

        if (amr.Count > 0)
        {
            claims["amr"] = amr.ToArray();
        }

        return Handler.CreateToken(new SecurityTokenDescriptor { Claims = claims, SigningCredentials = _signing, TokenType = "JWT" });
    }

    public void Dispose() => _key.Dispose();
}
