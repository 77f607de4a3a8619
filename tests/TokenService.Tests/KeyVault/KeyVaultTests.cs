using System.Net;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using TokenService.Azure.KeyVault;
using TokenService.Configuration;
using TokenService.Keys;
using TokenService.Tests.Infrastructure;
using TokenService.Validation.Jose;
using static TokenService.Tests.Infrastructure.TokenServiceTestHost;

namespace TokenService.Tests.KeyVault;

public sealed class KeyVaultKeysClientTests : IAsyncLifetime
{
    private FakeKeyVaultServer _vault = null!;
    private readonly RecordingCredential _credential = new();
    private KeyVaultKeysClient _client = null!;

    public async Task InitializeAsync()
    {
        _vault = await FakeKeyVaultServer.StartAsync();
        var options = new KeyVaultClientOptions { DisableChallengeResourceVerification = true };
        options.Retry.MaxRetries = 1;
        options.Retry.Delay = TimeSpan.FromMilliseconds(10);
        _client = new KeyVaultKeysClient(_vault.VaultUri, _credential, options);
    }

    public async Task DisposeAsync() => await _vault.DisposeAsync();

    [Fact]
    public async Task The_challenge_names_the_scope_and_tenant_the_token_is_requested_for()
    {
        await _client.CreateKeyAsync("k", "RSA-HSM", 2048, null, new Dictionary<string, string>(), default);
        var request = Assert.Single(_credential.Requests);
        Assert.Equal(["https://vault.azure.net/.default"], request.Scopes);
        Assert.Equal("72f988bf-0000-0000-0000-000000000000", request.TenantId);

        await _client.GetKeyAsync("k", null, default);
        Assert.Single(_credential.Requests); // cached
    }

    [Fact]
    public void A_challenge_for_a_resource_outside_the_vaults_domain_is_not_answered()
    {
        var policy = new KeyVaultChallengeAuthenticationPolicy(_credential);
        var vault = new Uri("https://contoso.vault.azure.net/");
        Assert.True(policy.TryParse("Bearer authorization=\"https://login.microsoftonline.com/t1\", resource=\"https://vault.azure.net\"", vault, out var scope, out var tenant));
        Assert.Equal("https://vault.azure.net/.default", scope);
        Assert.Equal("t1", tenant);
        Assert.False(policy.TryParse("Bearer authorization=\"https://login.microsoftonline.com/t1\", resource=\"https://management.azure.com\"", vault, out _, out _));
        Assert.False(policy.TryParse("Basic realm=\"x\"", vault, out _, out _));
    }

    [Theory]
    [InlineData("RSA-HSM", "RS256")]
    [InlineData("RSA-HSM", "PS256")]
    [InlineData("EC-HSM", "ES256")]
    public async Task Keys_are_created_read_listed_and_sign_digests_their_public_key_verifies(string kty, string alg)
    {
        var name = "k" + Guid.NewGuid().ToString("N")[..8];
        var created = await _client.CreateKeyAsync(name, kty, kty == "RSA-HSM" ? 2048 : null, kty == "EC-HSM" ? "P-256" : null, new Dictionary<string, string> { ["activate-at"] = "123" }, default);
        Assert.Equal("123", created.Tags["activate-at"]);
        Assert.NotNull(created.PublicJwk);
        var read = await _client.GetKeyAsync(name, created.Version, default);
        Assert.Equal(created.PublicJwk!.ComputeThumbprint(), read!.PublicJwk!.ComputeThumbprint());
        Assert.Null(await _client.GetKeyAsync(name, "missing", default));

        var input = Encoding.ASCII.GetBytes("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0");
        var signature = await _client.SignAsync(created.Kid, alg, SHA256.HashData(input), default);
        var verifier = VerificationKey.Create(created.PublicJwk)!;
        Assert.True(verifier.Verify(alg, input, signature));
        if (alg == "ES256")
        {
            Assert.Equal(64, signature.Length); // JOSE R‖S, not DER
        }
    }

    [Fact]
    public async Task Versions_are_listed_across_pages_and_can_be_disabled()
    {
        for (var i = 0; i < 5; i++)
        {
            await _client.CreateKeyAsync("paged", "EC-HSM", null, "P-256", new Dictionary<string, string>(), default);
        }

        var versions = await _client.ListKeyVersionsAsync("paged", default);
        Assert.Equal(5, versions.Count);
        Assert.True(_vault.Count("list") >= 3);
        var disabled = await _client.UpdateKeyAsync("paged", versions[0].Version, enabled: false, tags: null, default);
        Assert.False(disabled.Enabled);
        Assert.Empty(await _client.ListKeyVersionsAsync("never-created", default));
    }

    [Theory]
    [InlineData(429)]
    [InlineData(503)]
    public async Task Throttling_and_outages_are_dependency_unavailable(int status)
    {
        var key = await _client.CreateKeyAsync("f", "RSA-HSM", 2048, null, new Dictionary<string, string>(), default);
        _vault.FailWithStatus = status;
        var error = await Assert.ThrowsAsync<DependencyUnavailableException>(() => _client.SignAsync(key.Kid, "RS256", new byte[32], default));
        Assert.Equal("keyvault", error.Dependency);
    }

    [Fact]
    public async Task Errors_come_back_typed_without_secrets()
    {
        var error = await Assert.ThrowsAsync<KeyVaultException>(() => _client.CreateKeyAsync("bad", "oct-HSM", null, null, new Dictionary<string, string>(), default));
        Assert.Equal(400, error.Status);
        Assert.Equal("BadParameter", error.Code);
    }
}

/// <summary>The host signing with Key Vault: one vault call per issued token, none for JWKS or validation.</summary>
public sealed class KeyVaultHostTests : IAsyncLifetime
{
    private FakeKeyVaultServer _vault = null!;
    private TokenServiceTestHost _host = null!;

    public async Task InitializeAsync()
    {
        _vault = await FakeKeyVaultServer.StartAsync();
        _host = await TokenServiceTestHost.StartAsync(new Dictionary<string, string?>
        {
            ["Keys:KeyVaultUri"] = _vault.VaultUri.AbsoluteUri,
            ["Keys:KeyName"] = "token-signing",
            ["Keys:Algorithm"] = "ES256",
        }, configure: builder =>
        {
            var options = new KeyVaultClientOptions { DisableChallengeResourceVerification = true };
            options.Retry.MaxRetries = 1;
            options.Retry.Delay = TimeSpan.FromMilliseconds(10);
            builder.Services.AddSingleton(new KeyVaultKeysClient(_vault.VaultUri, new RecordingCredential(), options));
        });
    }

    public async Task DisposeAsync()
    {
        await _host.DisposeAsync();
        await _vault.DisposeAsync();
    }

    [Fact]
    public async Task Tokens_are_signed_in_key_vault_with_one_call_each_and_validation_costs_none()
    {
        var login = await _host.LoginAsync("kv-user");
        var jwks = new JsonWebKeySet(await _host.Client.GetStringAsync("/.well-known/jwks.json"));
        var result = await new JsonWebTokenHandler().ValidateTokenAsync(login.AccessToken, new TokenValidationParameters
        {
            ValidIssuer = "https://tokens.test.example",
            ValidAudiences = ["api://orders", "api://billing"],
            IssuerSigningKeys = jwks.GetSigningKeys(),
            ValidTypes = ["at+jwt"],
            ValidAlgorithms = ["ES256"],
        });
        Assert.True(result.IsValid, result.Exception?.Message);
        Assert.Equal(1, _vault.Count("create"));

        var signs = _vault.Count("sign");
        var reads = _vault.Count("get") + _vault.Count("list");
        using var refresh = await _host.RefreshAsync(login.RefreshToken);
        Assert.Equal(HttpStatusCode.OK, refresh.StatusCode);
        Assert.Equal(signs + 1, _vault.Count("sign"));

        for (var i = 0; i < 5; i++)
        {
            await _host.Client.GetStringAsync("/.well-known/jwks.json");
            Assert.True(await _host.IsActiveAsync(login.AccessToken));
        }

        Assert.Equal(signs + 1, _vault.Count("sign"));
        Assert.Equal(reads, _vault.Count("get") + _vault.Count("list"));
    }

    [Fact]
    public async Task A_key_vault_outage_answers_503_without_falling_back_while_jwks_and_validation_keep_working()
    {
        var login = await _host.LoginAsync("kv-outage");
        _vault.FailWithStatus = 503;
        using (var refresh = await _host.RefreshAsync(login.RefreshToken))
        {
            await AssertOAuthErrorAsync(refresh, "temporarily_unavailable", HttpStatusCode.ServiceUnavailable);
        }

        using (var issue = await _host.ExchangeAsync(_host.Idp.IdToken("kv-outage-2")))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, issue.StatusCode);
        }

        using (var jwks = await _host.Client.GetAsync("/.well-known/jwks.json"))
        {
            Assert.Equal(HttpStatusCode.OK, jwks.StatusCode);
        }

        Assert.True(await _host.IsActiveAsync(login.AccessToken));
        _vault.FailWithStatus = 0;
        using var after = await _host.RefreshAsync(login.RefreshToken);
        Assert.Equal(HttpStatusCode.OK, after.StatusCode);
    }
}

/// <summary>
/// Issue 19: a new key is published the propagation time before it signs, measured from when Key Vault has
/// created it, however long that took; until its activation time is written no instance publishes it.
/// </summary>
public sealed class KeyVaultNewKeysTests : IAsyncLifetime
{
    private static readonly DateTimeOffset Start = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private static readonly TimeSpan CreationTime = TimeSpan.FromSeconds(30);
    private readonly FakeTimeProvider _time = new(Start);
    private readonly KeysOptions _options = new()
    {
        KeyName = "rotating",
        Algorithm = "ES256",
        RotationInterval = TimeSpan.FromDays(90),
        PropagationTime = TimeSpan.FromDays(2),
        RetentionTime = TimeSpan.FromDays(2),
    };

    private FakeKeyVaultServer _vault = null!;
    private KeyVaultKeysClient _client = null!;
    private KeyVaultSigningKeyService _keys = null!;

    public async Task InitializeAsync()
    {
        _vault = await FakeKeyVaultServer.StartAsync();
        _options.KeyVaultUri = _vault.VaultUri.AbsoluteUri;
        var clientOptions = new KeyVaultClientOptions { DisableChallengeResourceVerification = true };
        clientOptions.Retry.MaxRetries = 0;
        _client = new KeyVaultKeysClient(_vault.VaultUri, new RecordingCredential(), clientOptions);
        _keys = new KeyVaultSigningKeyService(_client, Microsoft.Extensions.Options.Options.Create(_options), _time, NullLogger<KeyVaultSigningKeyService>.Instance);
    }

    public async Task DisposeAsync() => await _vault.DisposeAsync();

    [Fact]
    public async Task The_next_keys_activation_is_the_propagation_time_after_key_vault_created_it()
    {
        await _keys.RunRotationCheckAsync(CancellationToken.None);
        _time.Advance(_options.RotationInterval - _options.PropagationTime); // the next key is due

        DateTimeOffset? existsAt = null;
        _vault.OnCreate = () =>
        {
            _time.Advance(CreationTime);
            existsAt = _time.GetUtcNow();
        };
        var result = await _keys.RunRotationCheckAsync(CancellationToken.None);

        Assert.True(result.Changed, result.Summary);
        Assert.NotNull(existsAt);
        var pending = Assert.Single((await _keys.GetKeySetAsync(CancellationToken.None)).Published, k => k.State == SigningKeyState.Pending);
        Assert.True(
            pending.ActivatesAt >= existsAt + _options.PropagationTime,
            $"the key existed at {existsAt:O} but activates at {pending.ActivatesAt:O}: less than the propagation time later");

        // What other instances read: the tag, in whole seconds, not rounded into the propagation time.
        var version = Assert.Single(await _client.ListKeyVersionsAsync(_options.KeyName, CancellationToken.None), v => v.Kid == pending.ProviderKeyId);
        Assert.True(long.Parse(version.Tags[KeyVaultSigningKeyService.ActivateAtTag], System.Globalization.CultureInfo.InvariantCulture) >= (existsAt.Value + _options.PropagationTime).ToUnixTimeSeconds());
    }

    [Fact]
    public async Task A_created_version_without_an_activation_time_is_not_published()
    {
        var first = Assert.Single((await _keys.GetKeySetAsync(CancellationToken.None)).Published);

        // As left by an instance that stopped between creating a key and writing its activation time.
        await _client.CreateKeyAsync(_options.KeyName, "EC-HSM", null, "P-256", new Dictionary<string, string> { ["managed-by"] = "token-service" }, CancellationToken.None);
        _time.Advance(TimeSpan.FromMinutes(10)); // past the reload interval

        var set = await _keys.GetKeySetAsync(CancellationToken.None);
        Assert.Equal(first.ProviderKeyId, Assert.Single(set.Published).ProviderKeyId);
    }
}
