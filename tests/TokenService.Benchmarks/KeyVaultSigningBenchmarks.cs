using System.Security.Cryptography;
using System.Text;
using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using TokenService.Configuration;
using TokenService.Keys;
using TokenService.Sessions;
using TokenService.Tokens;

namespace TokenService.Benchmarks;

/// <summary>
/// The signing path beyond the Key Vault round trip: building the access token, hashing the signing input and
/// assembling the JWS, with a signer that returns a precomputed signature in place of the vault call.
/// <c>dotnet run -c Release --project tests/TokenService.Benchmarks -- --filter *KeyVaultSigning*</c>
/// </summary>
[MemoryDiagnoser]
public class KeyVaultSigningBenchmarks
{
    private AccessTokenIssuer _issuer = null!;
    private SessionRecord _session = null!;
    private byte[] _input = [];

    private sealed class RoundTripFreeSigner(LocalSigningKeyService keys, byte[] signature) : ISigningKeyService
    {
        public ValueTask<SigningKeySet> GetKeySetAsync(CancellationToken cancellationToken) => keys.GetKeySetAsync(cancellationToken);

        // What the service does around the vault call: hash the signing input (the vault signs the digest).
        public ValueTask<byte[]> SignAsync(SigningKey key, ReadOnlyMemory<byte> signingInput, CancellationToken cancellationToken)
        {
            _ = SHA256.HashData(signingInput.Span);
            return ValueTask.FromResult(signature);
        }

        public ValueTask<SignedInput> SignWithActiveKeyAsync(Func<SigningKey, ReadOnlyMemory<byte>> buildSigningInput, CancellationToken cancellationToken) =>
            ActiveKeySigning.SignAsync(this, buildSigningInput, cancellationToken);

        public Task<KeyRotationResult> RunRotationCheckAsync(CancellationToken cancellationToken) => keys.RunRotationCheckAsync(cancellationToken);

        public Task<KeyRotationResult> RotateNowAsync(bool immediate, CancellationToken cancellationToken) => keys.RotateNowAsync(immediate, cancellationToken);

        public Task<KeyRotationResult> RevokeAsync(string kid, CancellationToken cancellationToken) => keys.RevokeAsync(kid, cancellationToken);
    }

    [GlobalSetup]
    public void Setup()
    {
        var options = Options.Create(new TokenServiceOptions { Issuer = "https://tokens.bench.example" });
        var local = new LocalSigningKeyService(
            Options.Create(new KeysOptions { DevelopmentKeyPath = Path.Combine(Path.GetTempPath(), "bench-kv-" + Guid.NewGuid().ToString("N") + ".json") }),
            TimeProvider.System, NullLogger<LocalSigningKeyService>.Instance);
        _issuer = new AccessTokenIssuer(new RoundTripFreeSigner(local, new byte[256]), options, TimeProvider.System);
        var now = DateTimeOffset.UtcNow;
        _session = new SessionRecord
        {
            SessionId = SessionIds.NewSessionId("bench"), UserId = "bench", Subject = "bench", ClientId = "web", Scope = "orders.read",
            Audiences = ["api://orders"], CreatedAt = now, LastActivityAt = now, IdleExpiresAt = now.AddHours(1), AbsoluteExpiresAt = now.AddDays(1),
            RefreshTokenHash = "h", RefreshTokenExpiresAt = now.AddDays(1), WriteId = "w", PurgeAt = now.AddDays(2),
        };
        _input = Encoding.ASCII.GetBytes(new string('a', 600));
    }

    [Benchmark(Baseline = true, Description = "SHA-256 of a token-sized signing input")]
    public byte[] DigestOnly() => SHA256.HashData(_input);

    [Benchmark(Description = "access token beyond the vault round trip")]
    public async Task<string> TokenWithoutRoundTrip() => (await _issuer.IssueAsync(_session, "orders.read")).Token;
}
