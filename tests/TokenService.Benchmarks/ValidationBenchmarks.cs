using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using BenchmarkDotNet.Attributes;
using TokenService.Validation;
using TokenService.Jwt;

namespace TokenService.Benchmarks;

/// <summary>
/// Resource-server validation with warm caches against a raw RS256 verify of the same token (issue 7 target: at
/// most 1.3×), and how it grows with the number of keys in the JWKS.
/// <c>dotnet run -c Release --project tests/TokenService.Benchmarks -- --filter *ValidationBenchmarks*</c>
/// </summary>
[MemoryDiagnoser]
public class ValidationBenchmarks
{
    private const string Issuer = "https://tokens.bench.example";
    private RSA _rsa = null!;
    private string _token = string.Empty;
    private byte[] _signingInput = [];
    private byte[] _signature = [];
    private AccessTokenValidator _validator = null!;
    private IVerificationKeyResolver _keys = null!;
    private JwtValidationOptions _jwtOptions = null!;

    [Params(1, 3, 10)]
    public int KeysInJwks { get; set; }

    /// <summary>Discovery, JWKS and introspection answered in memory: only the warm path is measured.</summary>
    private sealed class InMemoryTokenService(string jwks) : HttpMessageHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var body = request.RequestUri!.AbsolutePath switch
            {
                "/.well-known/openid-configuration" => $"{{\"issuer\":\"{Issuer}\",\"jwks_uri\":\"{Issuer}/jwks\",\"introspection_endpoint\":\"{Issuer}/introspect\"}}",
                "/jwks" => jwks,
                _ => "{\"active\":true}",
            };
            return Task.FromResult(new HttpResponseMessage(HttpStatusCode.OK) { Content = new StringContent(body, Encoding.UTF8, "application/json") });
        }
    }

    private sealed class DictionaryResolver(Dictionary<string, VerificationKey> keys) : IVerificationKeyResolver
    {
        public ValueTask<KeyResolution> ResolveAsync(string? kid, CancellationToken cancellationToken) =>
            ValueTask.FromResult(kid is not null && keys.TryGetValue(kid, out var key) ? KeyResolution.Found(key) : KeyResolution.Unknown);
    }

    [GlobalSetup]
    public void Setup()
    {
        _rsa = RSA.Create(2048);
        var signingJwk = JsonWebKey.FromRsa(_rsa.ExportParameters(false), "RS256");
        var kid = signingJwk.ComputeThumbprint();
        var jwks = new JsonArray();
        var byKid = new Dictionary<string, VerificationKey>(StringComparer.Ordinal);
        for (var i = 0; i < KeysInJwks - 1; i++)
        {
            using var other = RSA.Create(2048);
            var jwk = JsonWebKey.FromRsa(other.ExportParameters(false), "RS256");
            jwk = jwk.WithKid(jwk.ComputeThumbprint());
            jwks.Add(new JsonObject { ["kty"] = "RSA", ["kid"] = jwk.Kid, ["alg"] = "RS256", ["use"] = "sig", ["n"] = jwk.N, ["e"] = jwk.E });
            byKid[jwk.Kid!] = VerificationKey.Create(jwk)!;
        }

        jwks.Add(new JsonObject { ["kty"] = "RSA", ["kid"] = kid, ["alg"] = "RS256", ["use"] = "sig", ["n"] = signingJwk.N, ["e"] = signingJwk.E });
        byKid[kid] = VerificationKey.Create(signingJwk.WithKid(kid))!;

        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var header = Base64UrlEncoding.Encode(Encoding.UTF8.GetBytes($"{{\"alg\":\"RS256\",\"kid\":\"{kid}\",\"typ\":\"at+jwt\"}}"));
        var payload = Base64UrlEncoding.Encode(Encoding.UTF8.GetBytes(
            $"{{\"iss\":\"{Issuer}\",\"sub\":\"alice\",\"aud\":\"api://orders\",\"exp\":{now + 3600},\"iat\":{now},\"nbf\":{now},\"jti\":\"j-{Guid.NewGuid():N}\",\"client_id\":\"web\",\"scope\":\"orders.read orders.write\",\"sid\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\",\"auth_time\":{now}}}"));
        _signingInput = Encoding.ASCII.GetBytes(header + "." + payload);
        _signature = _rsa.SignData(_signingInput, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        _token = header + "." + payload + "." + Base64UrlEncoding.Encode(_signature);

        _keys = new DictionaryResolver(byKid);
        _jwtOptions = new JwtValidationOptions { AllowedAlgorithms = JwsAlgorithms.Signing, Issuer = Issuer, Audiences = ["api://orders"], RequiredType = "at+jwt", RequireKeyId = true };
        _validator = new AccessTokenValidator(new AccessTokenValidationOptions
        {
            Authority = Issuer,
            Audience = "api://orders",
            ClientId = "api",
            ClientSecret = "secret",
            BackchannelHandler = new InMemoryTokenService(new JsonObject { ["keys"] = jwks }.ToJsonString()),
        });
        var warm = _validator.ValidateAsync(_token).AsTask().GetAwaiter().GetResult();
        if (!warm.IsValid)
        {
            throw new InvalidOperationException("Benchmark token does not validate: " + warm.Description);
        }
    }

    [Benchmark(Baseline = true, Description = "raw RS256 verify")]
    public bool RawVerify() => _rsa.VerifyData(_signingInput, _signature, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);

    [Benchmark(Description = "JwtValidator (signature + claims)")]
    public bool JwtValidatorOnly() => JwtValidator.ValidateAsync(_token, _jwtOptions, _keys, DateTimeOffset.UtcNow, default).Result.IsValid;

    [Benchmark(Description = "AccessTokenValidator, warm keys and status")]
    public bool AccessTokenValidatorWarm() => _validator.ValidateAsync(_token).Result.IsValid;
}
