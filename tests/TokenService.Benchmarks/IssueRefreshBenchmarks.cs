using System.Security.Cryptography;
using System.Text;
using BenchmarkDotNet.Attributes;
using TokenService.Sessions;
using TokenService.Tokens;

namespace TokenService.Benchmarks;

/// <summary>
/// CPU cost of issue (open a session + sign an access token) and refresh (rotate + sign) on embedded defaults,
/// against the raw RS256 signature of a token-sized input: the difference is the service's own overhead.
/// <c>dotnet run -c Release --project tests/TokenService.Benchmarks -- --filter *IssueRefresh*</c>
/// </summary>
[MemoryDiagnoser]
public class IssueRefreshBenchmarks
{
    private readonly OpenSessionRequest _request = new("bench-user", "bench-user", "web", "orders.read orders.write", ["api://orders"], DateTimeOffset.UtcNow, "urn:mfa", ["pwd"]);
    private byte[] _signingInput = [];
    private RSA _rsa = null!;
    private SessionService _sessions = null!;
    private AccessTokenIssuer _issuer = null!;
    private string _refreshToken = string.Empty;
    private int _user;

    [GlobalSetup]
    public void Setup()
    {
        (_sessions, _issuer) = InMemoryTokenCore.Create();
        _rsa = RSA.Create(2048);

        // A signing input the size of our access tokens' header.payload.
        var sample = _sessions.OpenAsync(_request, Issue, default).GetAwaiter().GetResult();
        _signingInput = Encoding.ASCII.GetBytes(sample.AccessToken.Token[..sample.AccessToken.Token.LastIndexOf('.')]);
        _refreshToken = sample.RefreshToken;
    }

    [Benchmark(Baseline = true, Description = "raw RS256 sign of a token-sized input")]
    public byte[] RawSign() => _rsa.SignData(_signingInput, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);

    [Benchmark(Description = "issue: open session + access token")]
    public async Task<string> Issue()
    {
        // A new user each time, so the per-user partition stays small as in real traffic.
        var request = _request with { UserId = "bench-user-" + (++_user) };
        var opened = await _sessions.OpenAsync(request, Issue, default);
        return opened.RefreshToken;
    }

    [Benchmark(Description = "refresh: rotate + access token")]
    public async Task<string?> Refresh()
    {
        var outcome = await _sessions.RefreshAsync(_refreshToken, "web", null, null, Issue, default);
        _refreshToken = outcome.RefreshToken!;
        return outcome.RefreshToken;
    }

    private ValueTask<IssuedAccessToken> Issue(SessionRecord session, string scope, CancellationToken cancellationToken) =>
        _issuer.IssueAsync(session, scope, cancellationToken);
}
