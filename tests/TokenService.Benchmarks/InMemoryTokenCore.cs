using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using TokenService.Configuration;
using TokenService.Keys;
using TokenService.Sessions;
using TokenService.Tokens;

namespace TokenService.Benchmarks;

/// <summary>
/// The issue and refresh core on embedded defaults (in-memory sessions, a throwaway local signing key), as the
/// issue/refresh and DPoP benchmarks measure it.
/// </summary>
internal static class InMemoryTokenCore
{
    public static (SessionService Sessions, AccessTokenIssuer Issuer) Create()
    {
        var options = Options.Create(new TokenServiceOptions { Issuer = "https://tokens.bench.example", MaxSessionsPerUser = 3 });
        var keys = new LocalSigningKeyService(
            Options.Create(new KeysOptions { DevelopmentKeyPath = Path.Combine(Path.GetTempPath(), "bench-keys-" + Guid.NewGuid().ToString("N") + ".json") }),
            TimeProvider.System, NullLogger<LocalSigningKeyService>.Instance);
        return (new SessionService(new InMemorySessionStore(), options, TimeProvider.System, NullLogger<SessionService>.Instance, BenchmarkMetrics.Create()),
            new AccessTokenIssuer(keys, options, TimeProvider.System));
    }
}
