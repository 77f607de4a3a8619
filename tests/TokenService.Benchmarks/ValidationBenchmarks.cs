using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using BenchmarkDotNet.Attributes;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using TokenService.Jwt;
using TokenService.Validation;

namespace TokenService.Benchmarks;

/// <summary>
/// Access-token validation with warm caches against a raw RS256 verify of the same token (the resource-server library's
/// goal, docs/performance.md: at most 1.3×), and how it grows with the number of keys in the JWKS: the core's
/// <see cref="JwtValidator"/> (introspection, /sessions), Microsoft.IdentityModel's handler on its own, and a resource
/// server as an API developer writes it (JwtBearer + <c>AddTokenServiceSessionCheck</c>), through
/// <see cref="IAuthenticationService"/> as the authentication middleware calls it.
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
    private JwtValidator _validator = null!;
    private JsonWebTokenHandler _handler = null!;
    private TokenValidationParameters _parameters = null!;
    private ServiceProvider _resourceServer = null!;
    private ServiceProvider _bearerOnly = null!;

    [Params(1, 3, 10)]
    public int KeysInJwks { get; set; }

    private sealed class DictionaryKeys(Dictionary<string, SecurityKey[]> keys) : IIssuerKeySource
    {
        public ValueTask<KeyResolution> ResolveAsync(string? kid, CancellationToken cancellationToken) =>
            ValueTask.FromResult(KeysFor(kid).Length > 0 ? KeyResolution.Found : KeyResolution.Unknown);

        public SecurityKey[] KeysFor(string? kid) => kid is not null && keys.TryGetValue(kid, out var key) ? key : [];
    }

    [GlobalSetup]
    public void Setup()
    {
        _rsa = RSA.Create(2048);
        var signingJwk = PublicJsonWebKey.FromRsa(_rsa.ExportParameters(false), "RS256");
        var kid = signingJwk.ComputeThumbprint();
        var jwks = new JsonArray();
        var byKid = new Dictionary<string, SecurityKey[]>(StringComparer.Ordinal);
        for (var i = 0; i < KeysInJwks - 1; i++)
        {
            using var other = RSA.Create(2048);
            var jwk = PublicJsonWebKey.FromRsa(other.ExportParameters(false), "RS256");
            jwk = jwk.WithKid(jwk.ComputeThumbprint());
            jwks.Add(new JsonObject { ["kty"] = "RSA", ["kid"] = jwk.Kid, ["alg"] = "RS256", ["use"] = "sig", ["n"] = jwk.N, ["e"] = jwk.E });
            byKid[jwk.Kid!] = [jwk.ToSecurityKey()!];
        }

        jwks.Add(new JsonObject { ["kty"] = "RSA", ["kid"] = kid, ["alg"] = "RS256", ["use"] = "sig", ["n"] = signingJwk.N, ["e"] = signingJwk.E });
        byKid[kid] = [signingJwk.WithKid(kid).ToSecurityKey()!];

        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var header = Base64UrlEncoding.Encode(Encoding.UTF8.GetBytes($"{{\"alg\":\"RS256\",\"kid\":\"{kid}\",\"typ\":\"at+jwt\"}}"));
        var payload = Base64UrlEncoding.Encode(Encoding.UTF8.GetBytes(
            $"{{\"iss\":\"{Issuer}\",\"sub\":\"alice\",\"aud\":\"api://orders\",\"exp\":{now + 3600},\"iat\":{now},\"nbf\":{now},\"jti\":\"j-{Guid.NewGuid():N}\",\"client_id\":\"web\",\"scope\":\"orders.read orders.write\",\"sid\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\",\"auth_time\":{now}}}"));
        _signingInput = Encoding.ASCII.GetBytes(header + "." + payload);
        _signature = _rsa.SignData(_signingInput, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        _token = header + "." + payload + "." + Base64UrlEncoding.Encode(_signature);

        var keys = new DictionaryKeys(byKid);
        _validator = new JwtValidator(
            new JwtValidationOptions { AllowedAlgorithms = JwsAlgorithms.Signing, Issuer = Issuer, Audiences = ["api://orders"], RequiredType = "at+jwt", RequireKeyId = true },
            keys, TimeProvider.System);
        _handler = new JsonWebTokenHandler { MapInboundClaims = false };
        _parameters = new TokenValidationParameters
        {
            ValidIssuer = Issuer,
            ValidAudience = "api://orders",
            ValidTypes = ["at+jwt"],
            ValidAlgorithms = ["RS256"],
            IssuerSigningKeyResolver = (_, _, k, _) => keys.KeysFor(k),
        };

        var jwksJson = new JsonObject { ["keys"] = jwks }.ToJsonString();
        _resourceServer = ResourceServer(jwksJson, sessionCheck: true);
        _bearerOnly = ResourceServer(jwksJson, sessionCheck: false);

        if (!JwtValidatorWarm() || !HandlerOnly() || !ResourceServerWarm().GetAwaiter().GetResult() || !BearerOnlyWarm().GetAwaiter().GetResult())
        {
            throw new InvalidOperationException("The benchmark token does not validate.");
        }
    }

    private static ServiceProvider ResourceServer(string jwks, bool sessionCheck)
    {
        var services = new ServiceCollection();
        services.AddLogging(logging => logging.SetMinimumLevel(LogLevel.None));
        var authentication = services.AddAuthentication(JwtBearerDefaults.AuthenticationScheme)
            .AddJwtBearer(o =>
            {
                o.Authority = Issuer;
                o.Audience = "api://orders";
                o.MapInboundClaims = false;
                o.BackchannelHttpHandler = new InMemoryTokenService(Issuer, jwks);
                o.TokenValidationParameters.ValidTypes = ["at+jwt"];
                o.TokenValidationParameters.ValidAlgorithms = ["RS256", "PS256", "ES256"];
                o.TokenValidationParameters.ClockSkew = TimeSpan.FromSeconds(30);
            });
        if (sessionCheck)
        {
            authentication.AddTokenServiceSessionCheck(o =>
            {
                o.ClientId = "api";
                o.ClientSecret = "secret";
                o.PublicOrigin = new Uri("https://orders.bench.example"); // required outside Development (DPoP's htu)
            });
        }

        return services.BuildServiceProvider();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _resourceServer.Dispose();
        _bearerOnly.Dispose();
    }

    [Benchmark(Baseline = true, Description = "raw RS256 verify")]
    public bool RawVerify() => _rsa.VerifyData(_signingInput, _signature, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);

    [Benchmark(Description = "JsonWebTokenHandler alone")]
    public bool HandlerOnly() => _handler.ValidateTokenAsync(_token, _parameters).GetAwaiter().GetResult().IsValid;

    [Benchmark(Description = "core JwtValidator (precheck + handler)")]
    public bool JwtValidatorWarm() => _validator.ValidateAsync(_token, default).AsTask().GetAwaiter().GetResult().IsValid;

    [Benchmark(Description = "JwtBearer alone (no session check), warm")]
    public Task<bool> BearerOnlyWarm() => AuthenticateAsync(_bearerOnly, _token);

    [Benchmark(Description = "resource server: JwtBearer + session check, warm")]
    public Task<bool> ResourceServerWarm() => ResourceServerAsync(_token);

    internal string Token => _token;

    /// <summary>One request's authentication, as the middleware runs it: a request scope, services resolved from it.</summary>
    internal Task<bool> ResourceServerAsync(string token) => AuthenticateAsync(_resourceServer, token);

    private static async Task<bool> AuthenticateAsync(ServiceProvider services, string token)
    {
        await using var scope = services.CreateAsyncScope();
        var context = new DefaultHttpContext { RequestServices = scope.ServiceProvider };
        context.Request.Headers.Authorization = "Bearer " + token;
        var result = await context.AuthenticateAsync(JwtBearerDefaults.AuthenticationScheme);
        return result.Succeeded;
    }
}
