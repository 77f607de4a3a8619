using System.Security.Cryptography;
using System.Text;
using BenchmarkDotNet.Attributes;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using TokenService.Dpop;
using TokenService.Validation;

namespace TokenService.Benchmarks;

/// <summary>
/// Validation of a DPoP-bound access token at a resource server (JwtBearer + the library's extension: token, proof, key
/// binding, replay-cache insert) against the same resource server with a bearer token, and both against the raw RS256
/// verify of the token. The proof is made once (making proofs is the client's cost); the replay cache gives each check a
/// fresh key, so its insert is paid but never reads as a replay.
/// <c>dotnet run -c Release --project tests/TokenService.Benchmarks -- --filter *DpopValidation*</c>
/// </summary>
[MemoryDiagnoser]
public class DpopValidationBenchmarks
{
    private const string Issuer = "https://tokens.bench.example";
    private const string Orders = "https://orders.bench.example/orders";

    private RSA _rsa = null!;
    private ECDsa _proofKey = null!;
    private byte[] _signingInput = [];
    private byte[] _signature = [];
    private string _bearerToken = string.Empty;
    private string _boundToken = string.Empty;
    private string _proof = string.Empty;
    private byte[] _proofSigningInput = [];
    private byte[] _proofSignature = [];
    private ServiceProvider _api = null!;

    /// <summary>The in-memory cache with a new key per call: the insert is paid, a replay never happens.</summary>
    private sealed class FreshKeyReplayCache : IDpopReplayCache
    {
        private readonly InMemoryDpopReplayCache _inner = new(TimeProvider.System);
        private long _n;

        public ValueTask<bool> TryAddAsync(string key, DateTimeOffset expiresAt, CancellationToken cancellationToken) =>
            _inner.TryAddAsync(key + Interlocked.Increment(ref _n), expiresAt, cancellationToken);
    }

    [GlobalSetup]
    public void Setup()
    {
        _rsa = RSA.Create(2048);
        var signingKey = new RsaSecurityKey(_rsa.ExportParameters(false));
        var jwk = JsonWebKeyConverter.ConvertFromRSASecurityKey(signingKey);
        var kid = Base64UrlEncoder.Encode(jwk.ComputeJwkThumbprint());
        var jwks = $"{{\"keys\":[{{\"kty\":\"RSA\",\"kid\":\"{kid}\",\"alg\":\"RS256\",\"use\":\"sig\",\"n\":\"{jwk.N}\",\"e\":\"{jwk.E}\"}}]}}";

        _proofKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var q = _proofKey.ExportParameters(false).Q;
        var proofJwk = new Dictionary<string, object> { ["kty"] = "EC", ["crv"] = "P-256", ["x"] = Base64UrlEncoder.Encode(q.X!), ["y"] = Base64UrlEncoder.Encode(q.Y!) };
        var jkt = Base64UrlEncoder.Encode(SHA256.HashData(Encoding.UTF8.GetBytes(
            $"{{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"{proofJwk["x"]}\",\"y\":\"{proofJwk["y"]}\"}}")));

        _bearerToken = Token(kid, null);
        _boundToken = Token(kid, jkt);
        var parts = _bearerToken.Split('.');
        _signingInput = Encoding.ASCII.GetBytes(parts[0] + "." + parts[1]);
        _signature = Base64UrlEncoder.DecodeBytes(parts[2]);

        _proof = new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = false }.CreateToken(new SecurityTokenDescriptor
        {
            SigningCredentials = new SigningCredentials(new ECDsaSecurityKey(_proofKey), "ES256"),
            TokenType = "dpop+jwt",
            AdditionalHeaderClaims = new Dictionary<string, object> { ["jwk"] = proofJwk },
            Claims = new Dictionary<string, object>
            {
                ["jti"] = Guid.NewGuid().ToString(),
                ["htm"] = "GET",
                ["htu"] = Orders,
                ["iat"] = DateTimeOffset.UtcNow.ToUnixTimeSeconds(),
                ["ath"] = Base64UrlEncoder.Encode(SHA256.HashData(Encoding.ASCII.GetBytes(_boundToken))),
            },
        });

        var proofParts = _proof.Split('.');
        _proofSigningInput = Encoding.ASCII.GetBytes(proofParts[0] + "." + proofParts[1]);
        _proofSignature = Base64UrlEncoder.DecodeBytes(proofParts[2]);

        var services = new ServiceCollection();
        services.AddLogging(logging => logging.SetMinimumLevel(LogLevel.None));
        services.AddAuthentication(JwtBearerDefaults.AuthenticationScheme)
            .AddJwtBearer(o =>
            {
                o.Authority = Issuer;
                o.Audience = "api://orders";
                o.MapInboundClaims = false;
                o.BackchannelHttpHandler = new InMemoryTokenService(Issuer, jwks);
            })
            .AddTokenServiceSessionCheck(o =>
            {
                o.ClientId = "api";
                o.ClientSecret = "secret";
                o.PublicOrigin = new Uri(Orders);
                // Proofs live 10 minutes here so that one proof serves the whole run.
                o.DpopProofLifetime = TimeSpan.FromMinutes(10);
                o.DpopReplayCache = new FreshKeyReplayCache();
            });
        _api = services.BuildServiceProvider();

        if (!RawVerify() || !RawProofVerify() || !Bearer().GetAwaiter().GetResult() || !Dpop().GetAwaiter().GetResult())
        {
            throw new InvalidOperationException("The benchmark tokens do not validate.");
        }
    }

    private string Token(string kid, string? jkt)
    {
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var claims = new Dictionary<string, object>
        {
            ["iss"] = Issuer,
            ["sub"] = "alice",
            ["aud"] = "api://orders",
            ["exp"] = now + 3600,
            ["iat"] = now,
            ["nbf"] = now,
            ["jti"] = "j-" + Guid.NewGuid().ToString("N"),
            ["client_id"] = "web",
            ["scope"] = "orders.read",
            ["sid"] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        };
        if (jkt is not null)
        {
            claims["cnf"] = new Dictionary<string, object> { ["jkt"] = jkt };
        }

        return new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = false }.CreateToken(new SecurityTokenDescriptor
        {
            SigningCredentials = new SigningCredentials(new RsaSecurityKey(_rsa) { KeyId = kid }, "RS256"),
            TokenType = "at+jwt",
            Claims = claims,
        });
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _api.Dispose();
        _rsa.Dispose();
        _proofKey.Dispose();
    }

    [Benchmark(Baseline = true, Description = "raw RS256 verify")]
    public bool RawVerify() => _rsa.VerifyData(_signingInput, _signature, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);

    /// <summary>The floor of any DPoP check: the proof's own signature (ES256, R‖S form, RFC 7518 §3.4).</summary>
    [Benchmark(Description = "raw ES256 verify (the proof's signature)")]
    public bool RawProofVerify() => _proofKey.VerifyData(_proofSigningInput, _proofSignature, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);

    [Benchmark(Description = "resource server, bearer token")]
    public Task<bool> Bearer() => AuthenticateAsync("Bearer " + _bearerToken, null);

    [Benchmark(Description = "resource server, DPoP-bound token + ES256 proof")]
    public Task<bool> Dpop() => AuthenticateAsync("DPoP " + _boundToken, _proof);

    private async Task<bool> AuthenticateAsync(string authorization, string? proof)
    {
        await using var scope = _api.CreateAsyncScope();
        var context = new DefaultHttpContext { RequestServices = scope.ServiceProvider };
        context.Request.Method = "GET";
        context.Request.Scheme = "https";
        context.Request.Host = new HostString("orders.bench.example");
        context.Request.Path = "/orders";
        context.Request.Headers.Authorization = authorization;
        if (proof is not null)
        {
            context.Request.Headers["DPoP"] = proof;
        }

        var result = await context.AuthenticateAsync(JwtBearerDefaults.AuthenticationScheme);
        return result.Succeeded;
    }
}
