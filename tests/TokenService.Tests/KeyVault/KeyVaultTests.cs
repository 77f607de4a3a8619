using System.Net;
using System.Security.Cryptography;
using System.Text;
using Azure.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using TokenService.Azure.KeyVault;
using TokenService.Azure.KeyVault.Keys;
using TokenService.Azure.KeyVault.Keys.Cryptography;
using TokenService.Configuration;
using TokenService.Keys;
using TokenService.Tests.Infrastructure;
using TokenService.Jwt;
using static TokenService.Tests.Infrastructure.TokenServiceTestHost;

namespace TokenService.Tests.KeyVault;

public sealed class KeyClientTests : IAsyncLifetime
{
    private FakeKeyVaultServer _vault = null!;
    private readonly RecordingCredential _credential = new();
    private KeyClient _client = null!;

    public async Task InitializeAsync()
    {
        _vault = await FakeKeyVaultServer.StartAsync();
        var options = new KeyClientOptions { Transport = FakeKeyVaultServer.Transport };
        options.Retry.MaxRetries = 1;
        options.Retry.Delay = TimeSpan.FromMilliseconds(10);
        _client = new KeyClient(_vault.VaultUri, _credential, options);
    }

    public async Task DisposeAsync() => await _vault.DisposeAsync();

    /// <summary>A client that knows the vault as https://myvault.vault.azure.net (routed to the in-test vault), verifying challenges.</summary>
    private KeyClient PublicClient(RecordingCredential credential)
    {
        _vault.PublicVaultUri = new Uri("https://myvault.vault.azure.net/");
        var options = new KeyClientOptions { Transport = _vault.RouteToLoopback() };
        options.Retry.MaxRetries = 1;
        options.Retry.Delay = TimeSpan.FromMilliseconds(10);
        return new KeyClient(_vault.PublicVaultUri, credential, options);
    }

    [Fact]
    public async Task The_challenge_names_the_scope_and_tenant_the_token_is_requested_for()
    {
        await _client.CreateTestKeyAsync("k", KeyType.RsaHsm);
        var request = Assert.Single(_credential.Requests);
        Assert.Equal(["https://vault.azure.net/.default"], request.Scopes);
        Assert.Equal("72f988bf-0000-0000-0000-000000000000", request.TenantId);

        await _client.GetKeyAsync("k", null, default);
        Assert.Single(_credential.Requests); // cached
    }

    [Fact]
    public async Task Bearer_tokens_never_go_over_plain_http_not_even_to_loopback()
    {
        // Azure.Core's BearerTokenAuthenticationPolicy, which the challenge policy derives from, refuses a non-https
        // request before anything is sent or a token asked for; tests reach the in-test vault by its https name instead.
        var client = new KeyClient(_vault.LoopbackUri, _credential, new KeyClientOptions());
        await Assert.ThrowsAsync<InvalidOperationException>(() => client.GetKeyAsync("k", null, default));
        Assert.Empty(_vault.Unauthenticated);
        Assert.Empty(_credential.Requests);
    }

    [Fact]
    public void A_challenge_for_a_resource_outside_the_vaults_domain_is_not_answered()
    {
        var policy = new KeyVaultChallengeAuthenticationPolicy(_credential);
        var vault = new Uri("https://contoso.vault.azure.net/");
        var challenge = policy.ParseChallenge("Bearer authorization=\"https://login.microsoftonline.com/t1\", resource=\"https://vault.azure.net\"", vault);
        Assert.Equal(new KeyVaultChallengeAuthenticationPolicy.Challenge("https://vault.azure.net/.default", "t1"), challenge);
        Assert.Throws<KeyVaultException>(() => policy.ParseChallenge("Bearer authorization=\"https://login.microsoftonline.com/t1\", resource=\"https://management.azure.com\"", vault));
        Assert.Null(policy.ParseChallenge("Basic realm=\"x\"", vault));
    }

    [Theory]
    [InlineData("Bearer authorization=\"https://login.microsoftonline.com/t1\", resource=\"https://vault.azure.net\"")]
    [InlineData("Bearer authorization=\"https://login.microsoftonline.com/t1\", scope=\"https://vault.azure.net/.default\"")]
    public async Task The_first_request_is_sent_without_its_body_and_with_it_once_the_challenge_is_answered(string challenge)
    {
        _vault.Challenge = challenge;
        var credential = new RecordingCredential();
        var client = PublicClient(credential);
        var key = await client.CreateTestKeyAsync("probe", KeyType.EcHsm, new Dictionary<string, string> { ["activate-at"] = "1" });

        // The unauthenticated probe carried no body; the authorized request carried it (the tags came back).
        Assert.Equal(("POST", "/keys/probe/create", 0), Assert.Single(_vault.Unauthenticated));
        Assert.Equal(1, _vault.Count("create"));
        Assert.Equal("1", key.Properties.Tags["activate-at"]);
        var request = Assert.Single(credential.Requests);
        Assert.Equal(["https://vault.azure.net/.default"], request.Scopes);
        Assert.Equal("t1", request.TenantId);

        // Once the challenge is known, bodies go with the token straight away.
        var signature = await client.SignAsync(key, "ES256", new byte[32]);
        Assert.Equal(64, signature.Length);
        Assert.Single(_vault.Unauthenticated);
    }

    [Theory]
    [InlineData("Bearer authorization=\"https://login.microsoftonline.com/t1\", resource=\"https://management.azure.com\"", "management.azure.com")]
    [InlineData("Bearer authorization=\"https://login.microsoftonline.com/t1\", scope=\"https://storage.azure.com/.default\"", "storage.azure.com")]
    [InlineData("Bearer authorization=\"https://login.microsoftonline.com/t1\", resource=\"https://evil-vault.azure.net\"", "evil-vault.azure.net")]
    public async Task A_challenge_for_a_foreign_domain_fails_with_a_clear_key_vault_error_and_no_token_is_requested(string challenge, string foreignHost)
    {
        _vault.Challenge = challenge;
        var credential = new RecordingCredential();
        var client = PublicClient(credential);

        var error = await Assert.ThrowsAsync<KeyVaultException>(() => client.GetKeyAsync("k", null, default));
        Assert.Contains($"'{foreignHost}'", error.Message, StringComparison.Ordinal);
        Assert.Contains("'myvault.vault.azure.net'", error.Message, StringComparison.Ordinal);
        Assert.Contains("Keys:DisableChallengeResourceVerification", error.Message, StringComparison.Ordinal);
        Assert.Empty(credential.Requests);
    }

    [Fact]
    public async Task NextLinks_that_spell_the_default_port_are_followed()
    {
        var client = PublicClient(new RecordingCredential());
        for (var i = 0; i < 5; i++)
        {
            await client.CreateTestKeyAsync("ported", KeyType.EcHsm);
        }

        // As in Key Vault's documented list example: https://myvault.vault.azure.net:443/keys/…/versions?…
        _vault.NextLinkBase = "https://MyVault.vault.azure.net:443";
        var versions = await client.ListVersionsAsync("ported");
        Assert.Equal(5, versions.Count);
        Assert.Equal(3, _vault.Count("list"));
    }

    [Theory]
    [InlineData("https://myvault.vault.azure.net:8443")]
    [InlineData("http://myvault.vault.azure.net")]
    [InlineData("https://other.vault.azure.net")]
    [InlineData("https://myvault.vault.azure.net.evil.example")]
    public async Task NextLinks_to_another_scheme_host_or_port_are_refused(string nextLinkBase)
    {
        var client = PublicClient(new RecordingCredential());
        for (var i = 0; i < 3; i++)
        {
            await client.CreateTestKeyAsync("elsewhere", KeyType.EcHsm);
        }

        _vault.NextLinkBase = nextLinkBase;
        // Read as an answer that is not what Key Vault documents: an outage, not a token sent elsewhere.
        var error = await ClientErrors.TranslatedAsync<DependencyUnavailableException>(() => client.ListVersionsAsync("elsewhere"), "list");
        Assert.Contains("nextLink", error.Message, StringComparison.Ordinal);
        Assert.Equal(1, _vault.Count("list"));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    public async Task A_null_or_empty_nextLink_ends_paging(string? finalNextLink)
    {
        for (var i = 0; i < 3; i++)
        {
            await _client.CreateTestKeyAsync("ends", KeyType.EcHsm);
        }

        _vault.FinalNextLink = finalNextLink;
        Assert.Equal(3, (await _client.ListVersionsAsync("ends")).Count);
        Assert.Equal(2, _vault.Count("list"));
    }

    private const string Kid = "https://myvault.vault.azure.net/keys/k/v1";

    [Theory]
    [InlineData("get", "<html>Bad gateway</html>")]
    [InlineData("get", "")]
    [InlineData("get", "null")]
    [InlineData("get", "[]")]
    [InlineData("get", "{}")]
    [InlineData("get", "{\"key\":\"x\"}")]
    [InlineData("get", "{\"key\":{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AQAB\",\"y\":\"AQAB\"}}")]
    [InlineData("get", "{\"key\":{\"kid\":5,\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AQAB\",\"y\":\"AQAB\"}}")]
    [InlineData("get", "{\"key\":{\"kid\":\"" + Kid + "\",\"kty\":\"RSA\",\"n\":7,\"e\":\"AQAB\"}}")]
    [InlineData("get", "{\"key\":{\"kid\":\"" + Kid + "\",\"kty\":\"RSA\",\"n\":\"not base64url!\",\"e\":\"AQAB\"}}")]
    [InlineData("get", "{\"key\":{\"kid\":\"" + Kid + "\",\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AQAB\"}}")]
    [InlineData("get", "{\"key\":{\"kid\":\"" + Kid + "\",\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AQAB\",\"y\":\"AQAB\"},\"attributes\":{\"enabled\":\"yes\"}}")]
    [InlineData("get", "{\"key\":{\"kid\":\"" + Kid + "\",\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AQAB\",\"y\":\"AQAB\"},\"attributes\":{\"created\":1e300}}")]
    [InlineData("get", "{\"key\":{\"kid\":\"" + Kid + "\",\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AQAB\",\"y\":\"AQAB\"},\"tags\":{\"activate-at\":1}}")]
    [InlineData("create", "{}")]
    [InlineData("update", "{\"attributes\":{\"enabled\":false}}")]
    [InlineData("list", "{}")]
    [InlineData("list", "{\"value\":{}}")]
    [InlineData("list", "{\"value\":[{\"attributes\":{\"enabled\":true}}]}")]
    [InlineData("list", "{\"value\":[],\"nextLink\":5}")]
    [InlineData("sign", "{}")]
    [InlineData("sign", "{\"kid\":\"" + Kid + "\",\"value\":\"***\"}")]
    public async Task A_200_whose_body_is_not_what_key_vault_documents_is_a_key_vault_outage(string operation, string body)
    {
        var client = PublicClient(new RecordingCredential());
        _vault.OverrideBody = body;
        Func<Task> call = operation switch
        {
            "get" => () => client.GetKeyAsync("k", "v1", default),
            "create" => () => client.CreateTestKeyAsync("k", KeyType.EcHsm),
            "update" => () => client.DisableAsync(new Uri(Kid)),
            "list" => () => client.ListVersionsAsync("k"),
            _ => () => client.GetCryptographyClient("k", "v1").SignAsync(SignatureAlgorithm.ES256, new byte[32]),
        };

        var error = await ClientErrors.TranslatedAsync<DependencyUnavailableException>(call, operation);
        Assert.Equal("keyvault", error.Dependency);
    }

    [Fact]
    public async Task An_rsa_modulus_with_a_leading_zero_octet_is_trimmed_to_the_same_key()
    {
        var created = await _client.CreateTestKeyAsync("padded", KeyType.RsaHsm);
        var thumbprint = created.PublicJwk().ComputeThumbprint();

        // 257 octets on the wire for a 2048-bit modulus.
        _vault.PrefixModulusWithZero = true;
        var padded = (await _client.GetKeyAsync("padded", created.Properties.Version)).Value.PublicJwk();
        Assert.Equal(2048, Base64UrlEncoding.DecodeStrict(padded.N)!.Length * 8);
        Assert.Equal(thumbprint, padded.ComputeThumbprint());

        var input = Encoding.ASCII.GetBytes("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0");
        var signature = await _client.SignAsync(created, "RS256", SHA256.HashData(input));
        var verifier = new TokenService.Keys.SigningKey(created.Key.Id, "RS256", padded, TokenService.Keys.SigningKeyState.Active, DateTimeOffset.UtcNow);
        Assert.True(verifier.VerifySignature(input, signature));
    }

    [Theory]
    [InlineData("RSA-HSM", "RS256")]
    [InlineData("RSA-HSM", "PS256")]
    [InlineData("EC-HSM", "ES256")]
    public async Task Keys_are_created_read_listed_and_sign_digests_their_public_key_verifies(string kty, string alg)
    {
        var name = "k" + Guid.NewGuid().ToString("N")[..8];
        var created = await _client.CreateTestKeyAsync(name, new KeyType(kty), new Dictionary<string, string> { ["activate-at"] = "123" });
        Assert.Equal("123", created.Properties.Tags["activate-at"]);
        var read = await _client.GetKeyAsync(name, created.Properties.Version);
        Assert.Equal(created.PublicJwk().ComputeThumbprint(), read.Value.PublicJwk().ComputeThumbprint());

        // A missing version is a 404 RequestFailedException, as Azure.Security.KeyVault.Keys throws it.
        var missing = await Assert.ThrowsAsync<global::Azure.RequestFailedException>(() => _client.GetKeyAsync(name, "missing"));
        Assert.Equal(404, missing.Status);
        Assert.Equal("KeyNotFound", missing.ErrorCode);

        var input = Encoding.ASCII.GetBytes("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0");
        var signature = await _client.SignAsync(created, alg, SHA256.HashData(input));
        var verifier = new TokenService.Keys.SigningKey(created.Key.Id, alg, created.PublicJwk(), TokenService.Keys.SigningKeyState.Active, DateTimeOffset.UtcNow);
        Assert.True(verifier.VerifySignature(input, signature));
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
            await _client.CreateTestKeyAsync("paged", KeyType.EcHsm);
        }

        var versions = await _client.ListVersionsAsync("paged");
        Assert.Equal(5, versions.Count);
        Assert.True(_vault.Count("list") >= 3);
        var disabled = await _client.DisableAsync(versions[0].Id!);
        Assert.False(disabled.Properties.Enabled);
        Assert.Empty(await _client.ListVersionsAsync("never-created"));
    }

    [Theory]
    [InlineData(429)]
    [InlineData(503)]
    public async Task Throttling_and_outages_are_dependency_unavailable(int status)
    {
        var key = await _client.CreateTestKeyAsync("f", KeyType.RsaHsm);
        _vault.FailWithStatus = status;
        var error = await ClientErrors.TranslatedAsync<DependencyUnavailableException>(() => _client.SignAsync(key, "RS256", new byte[32]), "sign");
        Assert.Equal("keyvault", error.Dependency);
    }

    [Fact]
    public async Task Errors_come_back_typed_without_secrets()
    {
        var thrown = await Assert.ThrowsAsync<global::Azure.RequestFailedException>(() => _client.CreateKeyAsync("bad", new KeyType("oct-HSM")));
        Assert.Equal(400, thrown.Status);
        Assert.Equal("BadParameter", thrown.ErrorCode);
        var error = Assert.IsType<KeyVaultException>(KeyVaultErrors.Translate(thrown, "create", metrics: null));
        Assert.Equal(400, error.Status);
        Assert.Equal("BadParameter", error.Code);
        Assert.Same(thrown, error.InnerException); // the vault's raw answer stays reachable from the service's error
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
            var options = new KeyClientOptions { Transport = FakeKeyVaultServer.Transport };
            options.Retry.MaxRetries = 1;
            options.Retry.Delay = TimeSpan.FromMilliseconds(10);
            builder.Services.AddSingleton(new KeyClient(_vault.VaultUri, new RecordingCredential(), options));
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
    public async Task A_key_vault_200_that_is_not_a_sign_result_answers_503()
    {
        var login = await _host.LoginAsync("kv-garbled");
        _vault.OverrideBody = "<html><body>502 Bad Gateway</body></html>";
        using (var refresh = await _host.RefreshAsync(login.RefreshToken))
        {
            await AssertOAuthErrorAsync(refresh, "temporarily_unavailable", HttpStatusCode.ServiceUnavailable);
        }

        _vault.OverrideBody = null;
        using var after = await _host.RefreshAsync(login.RefreshToken);
        Assert.Equal(HttpStatusCode.OK, after.StatusCode);
    }

    [Fact]
    public async Task Challenge_resource_verification_is_disabled_from_configuration()
    {
        // The in-test vault is reached through another name (a proxy) but challenges for https://vault.azure.net: only
        // the setting lets the host use it. The host's own client factory builds the client; the registered transport
        // carries its requests to the in-test vault.
        await using var vault = await FakeKeyVaultServer.StartAsync();
        vault.PublicVaultUri = new Uri("https://tokens-kv.proxy.test/");
        var credential = new RecordingCredential();
        await using var host = await TokenServiceTestHost.StartAsync(new Dictionary<string, string?>
        {
            ["Keys:KeyVaultUri"] = vault.PublicVaultUri.AbsoluteUri,
            ["Keys:Algorithm"] = "ES256",
            ["Keys:DisableChallengeResourceVerification"] = "true",
        }, configure: builder => builder.Services.AddSingleton<TokenCredential>(credential).AddSingleton(vault.RouteToLoopback()));

        var login = await host.LoginAsync("kv-config");
        Assert.NotEmpty(login.AccessToken);
        Assert.Equal(1, vault.Count("create"));
        Assert.All(credential.Requests, r => Assert.Equal(["https://vault.azure.net/.default"], r.Scopes));
        Assert.NotEmpty(credential.Requests);
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

/// <summary>A throttling vault through the host: 503 with the vault's Retry-After, nothing committed.</summary>
public sealed class KeyVaultThrottledHostTests
{
    [Fact]
    public async Task A_backoff_window_longer_than_the_budget_answers_503_with_its_Retry_After_and_the_refresh_is_not_committed()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 4, 1, 0, 0, 0, TimeSpan.Zero));
        await using var vault = await FakeKeyVaultServer.StartAsync();
        vault.Clock = time;
        await using var host = await TokenServiceTestHost.StartAsync(new Dictionary<string, string?>
        {
            ["Keys:KeyVaultUri"] = vault.VaultUri.AbsoluteUri,
            ["Keys:Algorithm"] = "ES256",
            ["TokenService:DependencyBudget"] = "00:00:10",
        }, configure: builder => builder.Services.AddSingleton(InTestVaults.Client(vault.VaultUri)), time: time);
        var login = await host.LoginAsync("kv-throttled");

        vault.ThrottleRetryAfter = 30; // longer than the 10 s dependency budget: no request waits for it
        vault.Throttle(0, TimeSpan.FromDays(1));
        using (var refresh = await host.RefreshAsync(login.RefreshToken))
        {
            await AssertOAuthErrorAsync(refresh, "temporarily_unavailable", HttpStatusCode.ServiceUnavailable);
            Assert.Equal(TimeSpan.FromSeconds(30), refresh.Headers.RetryAfter?.Delta);
        }

        Assert.Equal(1, vault.Count("throttled"));
        using (var during = await host.RefreshAsync(login.RefreshToken))
        {
            // The window is shared: the next request does not call the vault at all.
            Assert.Equal(HttpStatusCode.ServiceUnavailable, during.StatusCode);
            Assert.Equal(1, vault.Count("throttled"));
        }

        // After the window the same refresh token still refreshes: the throttled attempts rotated nothing.
        vault.Throttle(-1, TimeSpan.FromSeconds(1));
        time.Advance(TimeSpan.FromSeconds(30));
        using var after = await host.RefreshAsync(login.RefreshToken);
        Assert.Equal(HttpStatusCode.OK, after.StatusCode);
    }
}

/// <summary>
/// A new key is published the propagation time before it signs, measured from when Key Vault has
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
    private KeyClient _client = null!;
    private KeyVaultSigningKeyService _keys = null!;

    public async Task InitializeAsync()
    {
        _vault = await FakeKeyVaultServer.StartAsync();
        _options.KeyVaultUri = _vault.VaultUri.AbsoluteUri;
        var clientOptions = new KeyClientOptions { Transport = FakeKeyVaultServer.Transport };
        clientOptions.Retry.MaxRetries = 0;
        _client = new KeyClient(_vault.VaultUri, new RecordingCredential(), clientOptions);
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
        var version = Assert.Single(await _client.ListVersionsAsync(_options.KeyName), v => v.Kid() == pending.ProviderKeyId);
        Assert.True(long.Parse(version.Tags[KeyVaultSigningKeyService.ActivateAtTag], System.Globalization.CultureInfo.InvariantCulture) >= (existsAt.Value + _options.PropagationTime).ToUnixTimeSeconds());
    }

    [Fact]
    public async Task A_created_version_without_an_activation_time_is_not_published()
    {
        var first = Assert.Single((await _keys.GetKeySetAsync(CancellationToken.None)).Published);

        // As left by an instance that stopped between creating a key and writing its activation time.
        await _client.CreateTestKeyAsync(_options.KeyName, KeyType.EcHsm, new Dictionary<string, string> { ["managed-by"] = "token-service" });
        _time.Advance(TimeSpan.FromMinutes(10)); // past the reload interval

        var set = await _keys.GetKeySetAsync(CancellationToken.None);
        Assert.Equal(first.ProviderKeyId, Assert.Single(set.Published).ProviderKeyId);
    }
}
