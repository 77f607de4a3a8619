using System.Security.Cryptography;
using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using TokenService.Dpop;
using TokenService.Sessions;
using TokenService.Tokens;

namespace TokenService.Benchmarks;

/// <summary>
/// CPU cost of a DPoP-bound refresh (proof check + rotation + bound access token) against a plain refresh, and of
/// one ES256 proof check alone, on embedded defaults. The proof is made once (making it is the client's cost); the
/// replay cache gives each check a fresh key, so its insert is measured but never reads as a replay.
/// <c>dotnet run -c Release --project tests/TokenService.Benchmarks -- --filter *Dpop*</c>
/// </summary>
[MemoryDiagnoser]
public class DpopBenchmarks
{
    private const string TokenUri = "https://tokens.bench.example/oauth2/token";

    private readonly OpenSessionRequest _request = new("bench-user", "bench-user", "web", "orders.read", ["api://orders"], DateTimeOffset.UtcNow, null, []);
    private SessionService _sessions = null!;
    private AccessTokenIssuer _issuer = null!;
    private DpopProofValidator _validator = null!;
    private ECDsa _key = null!;
    private StringValues _proof;
    private string _jkt = string.Empty;
    private string _plainToken = string.Empty;
    private string _boundToken = string.Empty;

    [GlobalSetup]
    public void Setup()
    {
        (_sessions, _issuer) = InMemoryTokenCore.Create();
        var dpop = Options.Create(new DpopOptions { ProofLifetime = TimeSpan.FromMinutes(10) });
        _validator = new DpopProofValidator(new FreshKeyReplayCache(), new HmacDpopNonceService(dpop, TimeProvider.System), dpop, TimeProvider.System, NullLogger<DpopProofValidator>.Instance);

        _key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var q = _key.ExportParameters(false).Q;
        _proof = new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = false }.CreateToken(new SecurityTokenDescriptor
        {
            SigningCredentials = new SigningCredentials(new ECDsaSecurityKey(_key), "ES256"),
            TokenType = "dpop+jwt",
            AdditionalHeaderClaims = new Dictionary<string, object>
            {
                ["jwk"] = new Dictionary<string, object> { ["kty"] = "EC", ["crv"] = "P-256", ["x"] = Base64UrlEncoder.Encode(q.X!), ["y"] = Base64UrlEncoder.Encode(q.Y!) },
            },
            Claims = new Dictionary<string, object> { ["jti"] = Guid.NewGuid().ToString(), ["htm"] = "POST", ["htu"] = TokenUri, ["iat"] = DateTimeOffset.UtcNow.ToUnixTimeSeconds() },
        });
        _jkt = Check().GetAwaiter().GetResult().Thumbprint!;

        _plainToken = _sessions.OpenAsync(_request with { UserId = "plain" }, (s, scope, ct) => _issuer.IssueAsync(s, scope, ct), default).GetAwaiter().GetResult().RefreshToken;
        _boundToken = _sessions.OpenAsync(_request with { UserId = "bound", DpopJkt = _jkt }, (s, scope, ct) => _issuer.IssueAsync(s, scope, ct, _jkt), default).GetAwaiter().GetResult().RefreshToken;
    }

    [GlobalCleanup]
    public void Cleanup() => _key.Dispose();

    [Benchmark(Baseline = true, Description = "refresh: rotate + access token")]
    public async Task<string?> PlainRefresh()
    {
        var outcome = await _sessions.RefreshAsync(_plainToken, "web", null, null, (s, scope, ct) => _issuer.IssueAsync(s, scope, ct), default);
        _plainToken = outcome.RefreshToken!;
        return _plainToken;
    }

    [Benchmark(Description = "DPoP refresh: proof check + rotate + bound access token")]
    public async Task<string?> DpopRefresh()
    {
        var proof = await Check();
        var outcome = await _sessions.RefreshAsync(_boundToken, "web", null, proof.Thumbprint, (s, scope, ct) => _issuer.IssueAsync(s, scope, ct, proof.Thumbprint), default);
        _boundToken = outcome.RefreshToken!;
        return _boundToken;
    }

    [Benchmark(Description = "ES256 proof check alone")]
    public async Task<string?> ProofCheck() => (await Check()).Thumbprint;

    private ValueTask<DpopProofResult> Check() => _validator.ValidateAsync(new DpopProofRequest(_proof, "POST", TokenUri), default);

    /// <summary>The in-memory cache with a new key per call: the insert is paid, a replay never happens.</summary>
    private sealed class FreshKeyReplayCache : IDpopReplayCache
    {
        private readonly InMemoryDpopReplayCache _inner = new(TimeProvider.System);
        private long _n;

        public ValueTask<bool> TryAddAsync(string key, DateTimeOffset expiresAt, CancellationToken cancellationToken) =>
            _inner.TryAddAsync(key + Interlocked.Increment(ref _n), expiresAt, cancellationToken);
    }
}
