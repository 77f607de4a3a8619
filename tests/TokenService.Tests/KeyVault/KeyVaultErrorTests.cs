using System.Net;
using System.Text.Json;
using Azure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Microsoft.IdentityModel.JsonWebTokens;
using TokenService.Azure.KeyVault;
using TokenService.Azure.KeyVault.Keys;
using TokenService.Diagnostics;
using TokenService.Jwt;
using TokenService.Keys;
using TokenService.Tests.Infrastructure;
using static TokenService.Tests.Infrastructure.TokenServiceTestHost;

namespace TokenService.Tests.KeyVault;

/// <summary>
/// Key Vault errors (docs/key-vault.md, "Key Vault errors"), the client: Key Vault's errors read as Azure documents them. A 403 is its own error carrying the innermost
/// error code (<c>KeyDisabled</c>, <c>ForbiddenByRbac</c>), counted with it; EC coordinates are the curve's size (RFC
/// 7518 §6.2.1.2); a 429 on a read is never retried by the pipeline: its Retry-After goes to the caller at once.
/// </summary>
public sealed class KeyVaultErrorClientTests : IAsyncLifetime
{
    private FakeKeyVaultServer _vault = null!;
    private readonly TokenServiceMetrics _metrics = TestMetrics.Create();
    private KeyClient _client = null!;

    public async Task InitializeAsync()
    {
        _vault = await FakeKeyVaultServer.StartAsync();

        // The production retry settings (three retries): what the pipeline retries is part of what is tested.
        _client = new KeyClient(_vault.VaultUri, new RecordingCredential(), new KeyClientOptions { Transport = FakeKeyVaultServer.Transport });
    }

    public async Task DisposeAsync() => await _vault.DisposeAsync();

    [Fact]
    public async Task A_sign_on_a_disabled_key_is_a_403_KeyDisabled_error_not_an_outage()
    {
        var key = await _client.CreateTestKeyAsync("disabled", KeyType.EcHsm);
        await _client.DisableAsync(key.Id);

        // The client throws what Azure.Security.KeyVault.Keys throws, the innermost code as ErrorCode; the signing
        // service reads it as a KeyVaultException.
        var thrown = await Assert.ThrowsAsync<RequestFailedException>(() => _client.SignAsync(key, "ES256", new byte[32]));
        Assert.Equal(403, thrown.Status);
        Assert.Equal("KeyDisabled", thrown.ErrorCode);
        var error = Assert.IsType<KeyVaultException>(KeyVaultErrors.Translate(thrown, "sign", metrics: null));
        Assert.Equal(403, error.Status);
        Assert.Equal("Forbidden", error.Code);
        Assert.Equal("KeyDisabled", error.ErrorCode);
        Assert.Equal("sign", error.Operation);
        Assert.True(error.IsKeyDisabled);
        Assert.False(error.IsAccessDenied);
        Assert.Equal(1, _vault.Count("sign-disabled")); // a 403 is not retried
    }

    [Theory]
    [InlineData("sign")]
    [InlineData("list")]
    public async Task A_missing_role_is_a_403_ForbiddenByRbac_error_not_an_outage(string operation)
    {
        var key = await _client.CreateTestKeyAsync("norole", KeyType.EcHsm);
        _vault.DenyOperations[operation] = true;
        Func<Task> call = operation == "sign"
            ? () => _client.SignAsync(key, "ES256", new byte[32])
            : () => _client.ListVersionsAsync("norole");

        var thrown = await Assert.ThrowsAsync<RequestFailedException>(call);
        Assert.Equal(403, thrown.Status);
        Assert.Equal("ForbiddenByRbac", thrown.ErrorCode);
        var error = Assert.IsType<KeyVaultException>(KeyVaultErrors.Translate(thrown, operation, metrics: null));
        Assert.Equal(403, error.Status);
        Assert.Equal("ForbiddenByRbac", error.ErrorCode);
        Assert.True(error.IsAccessDenied);
        Assert.Contains("ForbiddenByRbac", error.Message, StringComparison.Ordinal);
        Assert.Equal(1, _vault.Count("denied"));
    }

    [Fact]
    public async Task Key_vault_errors_are_counted_with_their_operation_status_and_inner_error_code()
    {
        using var errors = new MetricCollector<long>(_metrics.KeyVaultErrors);

        var key = await _client.CreateTestKeyAsync("counted", KeyType.EcHsm);
        await _client.DisableAsync(key.Id);
        // Counted where the signing service reads the client's error.
        await ClientErrors.TranslatedAsync<KeyVaultException>(() => _client.SignAsync(key, "ES256", new byte[32]), "sign", _metrics);

        // The host's instruments: the one error response of this test, tagged with the inner code.
        var error = Assert.Single(errors.GetMeasurementSnapshot());
        Assert.Equal(1, error.Value);
        Assert.Equal("sign", error.Tags[TokenServiceMetrics.Tags.KeyVaultOperation]);
        Assert.Equal(403, error.Tags[TokenServiceMetrics.Tags.HttpStatusCode]);
        Assert.Equal("KeyDisabled", error.Tags[TokenServiceMetrics.Tags.KeyVaultErrorCode]);
    }

    [Fact]
    public async Task A_429_on_a_read_is_not_retried_and_carries_the_vaults_Retry_After()
    {
        _vault.ThrottleRetryAfter = 1;
        _vault.Throttle(0, TimeSpan.FromDays(1));

        var error = await ClientErrors.TranslatedAsync<DependencyUnavailableException>(() => _client.ListVersionsAsync("throttled"), "list");
        Assert.Equal("keyvault", error.Dependency);
        Assert.Equal(TimeSpan.FromSeconds(1), error.RetryAfter);
        Assert.Equal(429, Assert.IsType<KeyVaultException>(error.InnerException).Status);
        Assert.Equal(1, _vault.Count("throttled")); // one call: the caller decides whether its budget allows another
    }

    private const string Kid = "https://myvault.vault.azure.net/keys/k/v1";

    private static string EcBundle(byte[] x, byte[] y) =>
        "{\"key\":{\"kid\":\"" + Kid + "\",\"kty\":\"EC-HSM\",\"crv\":\"P-256\",\"x\":\"" + Base64UrlEncoding.Encode(x) + "\",\"y\":\"" + Base64UrlEncoding.Encode(y)
        + "\"},\"attributes\":{\"enabled\":true,\"created\":1}}";

    private static byte[] Octets(int length, byte first) => [first, .. Enumerable.Repeat((byte)0x5a, length - 1)];

    [Fact]
    public async Task Ec_coordinates_with_their_leading_zero_octets_dropped_or_a_sign_octet_added_are_read_as_32_octets()
    {
        // The same point three ways: fixed size (RFC 7518 §6.2.1.2), its leading zero octet dropped (31 octets, an
        // integer encoder), and with a 0x00 sign octet before a high first octet (33, DER style).
        var x = Octets(32, 0x00);
        var y = Octets(32, 0x80);
        _vault.OverrideBody = EcBundle(x, y);
        var fixedSize = (await _client.GetKeyAsync("k", "v1")).Value.PublicJwk();
        _vault.OverrideBody = EcBundle(x[1..], [0x00, .. y]);
        var resized = (await _client.GetKeyAsync("k", "v1")).Value.PublicJwk();

        Assert.Equal(x, Base64UrlEncoding.DecodeStrict(resized.X));
        Assert.Equal(y, Base64UrlEncoding.DecodeStrict(resized.Y));
        Assert.Equal(fixedSize.ComputeThumbprint(), resized.ComputeThumbprint());
    }

    [Theory]
    [InlineData(33, 32)]
    [InlineData(32, 48)]
    public async Task Ec_coordinates_longer_than_the_curve_allows_are_a_key_vault_fault_where_the_bundle_is_read(int xLength, int yLength)
    {
        _vault.OverrideBody = EcBundle(Octets(xLength, 0x7f), Octets(yLength, 0x7f));

        var error = await ClientErrors.TranslatedAsync<DependencyUnavailableException>(() => _client.GetKeyAsync("k", "v1", default), "get");
        Assert.Equal("keyvault", error.Dependency);
        Assert.Contains("octets", error.Message, StringComparison.Ordinal);
    }
}

/// <summary>
/// Key Vault errors, the signing services: two instances on one vault (one revokes, the other's cache still names the revoked
/// key) and an identity without the sign role, on a <see cref="FakeTimeProvider"/>.
/// </summary>
public sealed class KeyVaultErrorSigningTests
{
    [Fact]
    public async Task After_a_revoke_through_one_instance_the_other_signs_its_next_token_with_the_current_key()
    {
        await using var vaults = await InTestVaults.StartAsync(1);
        var first = vaults.Vault(0);
        var second = vaults.Vault(0);
        var revoked = (await first.GetKeySetAsync(CancellationToken.None)).Active!;
        Assert.Equal(revoked.Kid, (await second.GetKeySetAsync(CancellationToken.None)).Active!.Kid);

        await first.RevokeAsync(revoked.Kid, CancellationToken.None);
        var current = (await first.GetKeySetAsync(CancellationToken.None)).Active!;
        Assert.NotEqual(revoked.Kid, current.Kid);

        // The second instance's cached set still says the revoked key signs: Key Vault answers 403 KeyDisabled, the
        // set is reloaded and the same request is signed with the current key, its input built for that key's kid.
        var signed = await second.SignWithActiveKeyAsync(InTestVaults.Input, CancellationToken.None);
        Assert.Equal(current.Kid, signed.Key.Kid);
        Assert.EndsWith(current.Kid, System.Text.Encoding.ASCII.GetString(signed.SigningInput.Span), StringComparison.Ordinal);
        Assert.True(current.VerifySignature(signed.SigningInput.ToArray(), signed.Signature));
        Assert.Equal(1, vaults.Servers[0].Count("sign-disabled"));
        Assert.Equal(current.Kid, (await second.GetKeySetAsync(CancellationToken.None)).Active!.Kid);
    }

    [Fact]
    public async Task A_missing_sign_role_is_reported_once_remembered_without_calls_and_cleared_when_granted()
    {
        await using var vaults = await InTestVaults.StartAsync(1);
        var health = new SigningKeyHealth();
        using var vault = new KeyVaultSigningKeyService(
            InTestVaults.Client(vaults.Servers[0].VaultUri), vaults.Options, new KeyVaultPlacement(0, 1, vaults.Options.SignsPerWindow, TimeSpan.FromSeconds(10)),
            vaults.Time, NullLogger<KeyVaultSigningKeyService>.Instance, health);
        await vault.GetKeySetAsync(CancellationToken.None);
        var server = vaults.Servers[0];
        server.DenyOperations["sign"] = true;

        for (var i = 0; i < 5; i++)
        {
            var error = await Assert.ThrowsAsync<DependencyUnavailableException>(() => vault.SignWithActiveKeyAsync(InTestVaults.Input, CancellationToken.None).AsTask());
            Assert.Equal("ForbiddenByRbac", Assert.IsType<KeyVaultException>(error.InnerException).ErrorCode);
            Assert.True(error.RetryAfter > TimeSpan.Zero);
        }

        Assert.Equal(1, server.Count("denied")); // one call: the other four were answered from memory
        var problem = Assert.Single(health.Problems);
        Assert.Equal($"key vault: ForbiddenByRbac on sign: the app's identity lacks 'Key Vault Crypto User' on {vaults.Servers[0].VaultUri.Host}", problem);

        // The role is granted; after the recheck interval one call proves it and the problem is gone.
        server.DenyOperations.Clear();
        vaults.Time.Advance(KeyVaultSigningKeyService.AccessDeniedRecheck);
        await vault.SignWithActiveKeyAsync(InTestVaults.Input, CancellationToken.None);
        Assert.Empty(health.Problems);
    }

    [Fact]
    public async Task The_signing_service_counts_each_key_vault_error_answer_in_the_hosts_metrics()
    {
        await using var vaults = await InTestVaults.StartAsync(1);
        var metrics = TestMetrics.Create();
        using var errors = new MetricCollector<long>(metrics.KeyVaultErrors);
        using var vault = new KeyVaultSigningKeyService(
            InTestVaults.Client(vaults.Servers[0].VaultUri), vaults.Options, new KeyVaultPlacement(0, 1, vaults.Options.SignsPerWindow, TimeSpan.FromSeconds(10)),
            vaults.Time, NullLogger<KeyVaultSigningKeyService>.Instance, metrics: metrics);
        await vault.GetKeySetAsync(CancellationToken.None);
        Assert.Empty(errors.GetMeasurementSnapshot()); // the first start's list and get: no error answer

        vaults.Servers[0].DenyOperations["sign"] = true;
        await Assert.ThrowsAsync<DependencyUnavailableException>(() => vault.SignWithActiveKeyAsync(InTestVaults.Input, CancellationToken.None).AsTask());

        var error = Assert.Single(errors.GetMeasurementSnapshot());
        Assert.Equal("sign", error.Tags[TokenServiceMetrics.Tags.KeyVaultOperation]);
        Assert.Equal(403, error.Tags[TokenServiceMetrics.Tags.HttpStatusCode]);
        Assert.Equal("ForbiddenByRbac", error.Tags[TokenServiceMetrics.Tags.KeyVaultErrorCode]);
    }
}

/// <summary>Key Vault errors through HTTP on the standalone host.</summary>
public sealed class KeyVaultErrorHostTestsOnStandalone : KeyVaultErrorHostTestsBase
{
    protected override HostKind Kind => HostKind.Standalone;
}

/// <summary>Key Vault errors through HTTP on the Functions app.</summary>
public sealed class KeyVaultErrorHostTestsOnFunctions : KeyVaultErrorHostTestsBase
{
    protected override HostKind Kind => HostKind.Functions;
}

/// <summary>
/// Key Vault errors through HTTP, on both hosts: a revoke through one instance costs a second instance no 503; a missing role is
/// one clear <c>/healthz</c> line and no retry storm; a JWKS request under throttling answers within its budget.
/// </summary>
public abstract class KeyVaultErrorHostTestsBase : IAsyncLifetime
{
    private FakeKeyVaultServer _vault = null!;

    protected abstract HostKind Kind { get; }

    public async Task InitializeAsync() => _vault = await FakeKeyVaultServer.StartAsync();

    public async Task DisposeAsync() => await _vault.DisposeAsync();

    private Task<TokenServiceTestHost> StartHostAsync(KeyClientOptions? clientOptions = null, TimeProvider? time = null) =>
        TokenServiceTestHost.StartAsync(Kind, new Dictionary<string, string?>
        {
            ["Keys:KeyVaultUri"] = _vault.VaultUri.AbsoluteUri,
            ["Keys:KeyName"] = "token-signing",
            ["Keys:Algorithm"] = "ES256",
        }, time: time, services: services => services.AddSingleton(clientOptions is null
            ? InTestVaults.Client(_vault.VaultUri)
            : new KeyClient(_vault.VaultUri, new RecordingCredential(), clientOptions)));

    private static async Task<string> AccessTokenKidAsync(HttpResponseMessage response)
    {
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return new JsonWebToken((await JsonAsync(response)).GetProperty("access_token").GetString()).Kid;
    }

    [Fact]
    public async Task After_a_revoke_through_one_instance_a_second_instance_signs_its_next_token_with_the_current_key_without_a_503()
    {
        await using var first = await StartHostAsync();
        await using var second = await StartHostAsync();
        var revokedKid = new JsonWebToken((await first.LoginAsync("kv-revoke-1")).AccessToken).Kid;
        using (var before = await second.ExchangeAsync(second.Idp.IdToken("kv-revoke-2")))
        {
            Assert.Equal(revokedKid, await AccessTokenKidAsync(before)); // the second instance has the key cached
        }

        using (var revoke = new HttpRequestMessage(HttpMethod.Post, $"/management/keys/{revokedKid}/revoke"))
        {
            revoke.Headers.Authorization = Basic("ops", OpsSecret);
            using var revoked = await first.Client.SendAsync(revoke);
            Assert.Equal(HttpStatusCode.OK, revoked.StatusCode);
        }

        var currentKid = (await first.Services.GetRequiredService<ISigningKeyService>().GetKeySetAsync(CancellationToken.None)).Active!.Kid;
        Assert.NotEqual(revokedKid, currentKid);

        using var after = await second.ExchangeAsync(second.Idp.IdToken("kv-revoke-3"));
        Assert.Equal(currentKid, await AccessTokenKidAsync(after));
        Assert.Equal(1, _vault.Count("sign-disabled"));
    }

    [Fact]
    public async Task After_a_key_version_is_deleted_a_second_instance_signs_its_next_token_with_the_current_key_without_a_500()
    {
        await using var first = await StartHostAsync();
        await using var second = await StartHostAsync();
        var revokedKid = new JsonWebToken((await first.LoginAsync("kv-deleted-1")).AccessToken).Kid;
        var deleted = (await first.Services.GetRequiredService<ISigningKeyService>().GetKeySetAsync(CancellationToken.None)).Active!;
        Assert.Equal(revokedKid, deleted.Kid);
        using (var before = await second.ExchangeAsync(second.Idp.IdToken("kv-deleted-2")))
        {
            Assert.Equal(revokedKid, await AccessTokenKidAsync(before)); // the second instance has the key cached
        }

        using (var revoke = new HttpRequestMessage(HttpMethod.Post, $"/management/keys/{revokedKid}/revoke"))
        {
            revoke.Headers.Authorization = Basic("ops", OpsSecret);
            using var revoked = await first.Client.SendAsync(revoke);
            Assert.Equal(HttpStatusCode.OK, revoked.StatusCode);
        }

        // The version is then gone from the vault altogether: a sign on it is answered 404 KeyNotFound, which (like 403
        // KeyDisabled) means the second instance's key set is stale, not that the vault is out.
        _vault.Remove(deleted.ProviderKeyId);
        var currentKid = (await first.Services.GetRequiredService<ISigningKeyService>().GetKeySetAsync(CancellationToken.None)).Active!.Kid;
        Assert.NotEqual(revokedKid, currentKid);

        using var after = await second.ExchangeAsync(second.Idp.IdToken("kv-deleted-3"));
        Assert.Equal(currentKid, await AccessTokenKidAsync(after));
        Assert.Equal(1, _vault.Count("sign-not-found"));
    }

    [Fact]
    public async Task A_sign_on_the_only_key_after_it_was_deleted_answers_503_temporarily_unavailable()
    {
        await using var host = await StartHostAsync();
        await host.LoginAsync("kv-only-deleted");
        var only = (await host.Services.GetRequiredService<ISigningKeyService>().GetKeySetAsync(CancellationToken.None)).Active!;
        _vault.Remove(only.ProviderKeyId);

        using var refused = await host.ExchangeAsync(host.Idp.IdToken("kv-only-deleted-2"));
        await AssertOAuthErrorAsync(refused, "temporarily_unavailable", HttpStatusCode.ServiceUnavailable);
        Assert.True(refused.Headers.RetryAfter?.Delta > TimeSpan.Zero);
        Assert.Equal(1, _vault.Count("sign-not-found")); // one reload, no loop
    }

    [Theory]
    [InlineData(400, "BadParameter")]
    [InlineData(409, "Conflict")]
    public async Task A_client_error_on_sign_answers_503_temporarily_unavailable_not_500(int status, string code)
    {
        await using var host = await StartHostAsync();
        await host.LoginAsync("kv-sign-" + status);
        _vault.FailOperations["sign"] = (status, code);

        using var refused = await host.ExchangeAsync(host.Idp.IdToken("kv-sign-" + status + "-2"));
        await AssertOAuthErrorAsync(refused, "temporarily_unavailable", HttpStatusCode.ServiceUnavailable);
        Assert.Equal("no-store", refused.Headers.CacheControl?.ToString());
        Assert.True(refused.Headers.RetryAfter?.Delta > TimeSpan.Zero);
        Assert.Equal(1, _vault.Count("failed-sign")); // not retried
    }

    [Theory]
    [InlineData(400, "BadParameter")]
    [InlineData(404, "KeyNotFound")]
    [InlineData(409, "Conflict")]
    public async Task A_client_error_on_a_key_change_answers_503_problem_details_not_500(int status, string code)
    {
        await using var host = await StartHostAsync();
        var kid = new JsonWebToken((await host.LoginAsync("kv-change-" + status)).AccessToken).Kid;
        _vault.FailOperations["update"] = (status, code);

        using var revoke = new HttpRequestMessage(HttpMethod.Post, $"/management/keys/{kid}/revoke");
        revoke.Headers.Authorization = Basic("ops", OpsSecret);
        using var refused = await host.Client.SendAsync(revoke);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
        Assert.Equal("application/problem+json", refused.Content.Headers.ContentType?.MediaType);
        Assert.True(refused.Headers.RetryAfter?.Delta > TimeSpan.Zero);
        Assert.True(_vault.Count("failed-update") >= 1);
    }

    [Fact]
    public async Task A_missing_sign_role_gives_one_clear_healthz_line_and_no_retry_storm()
    {
        await using var host = await StartHostAsync();
        await host.LoginAsync("kv-norole");
        _vault.DenyOperations["sign"] = true;

        for (var i = 0; i < 3; i++)
        {
            using var refused = await host.ExchangeAsync(host.Idp.IdToken("kv-norole-" + i));
            await AssertOAuthErrorAsync(refused, "temporarily_unavailable", HttpStatusCode.ServiceUnavailable);
            Assert.Equal("no-store", refused.Headers.CacheControl?.ToString());
            Assert.True(refused.Headers.RetryAfter?.Delta > TimeSpan.Zero);
        }

        using var health = await host.Client.GetAsync("/healthz");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, health.StatusCode);
        var body = await JsonAsync(health);
        Assert.Equal("unhealthy", body.GetProperty("status").GetString());
        Assert.Equal("misconfigured", body.GetProperty("checks").GetProperty("keys").GetString());
        var problem = Assert.Single(body.GetProperty("problems").EnumerateArray()).GetString();
        Assert.Equal($"key vault: ForbiddenByRbac on sign: the app's identity lacks 'Key Vault Crypto User' on {_vault.VaultUri.Host}", problem);
        using (await host.Client.GetAsync("/healthz"))
        {
        }

        Assert.Equal(1, _vault.Count("denied")); // three token requests and two health probes: one call
    }

    [Fact]
    public async Task A_jwks_request_due_a_reload_under_throttling_answers_from_cached_keys_after_one_vault_call()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 5, 1, 0, 0, 0, TimeSpan.Zero));
        _vault.Clock = time;
        await using var host = await StartHostAsync(new KeyClientOptions { Transport = FakeKeyVaultServer.Transport }, time);
        var kid = new JsonWebToken((await host.LoginAsync("kv-throttled-jwks")).AccessToken).Kid;
        time.Advance(TimeSpan.FromMinutes(6)); // past the reload interval: the next key-set read reloads

        _vault.ThrottleRetryAfter = 1;
        _vault.Throttle(0, TimeSpan.FromDays(1));
        using var jwks = await host.Client.GetAsync("/.well-known/jwks.json");

        Assert.Equal(HttpStatusCode.OK, jwks.StatusCode);
        using var document = JsonDocument.Parse(await jwks.Content.ReadAsStringAsync());
        Assert.Contains(document.RootElement.GetProperty("keys").EnumerateArray(), k => k.GetProperty("kid").GetString() == kid);
        Assert.Equal(1, _vault.Count("throttled")); // not retried after Retry-After within the request: cached keys served at once
    }

    [Fact]
    public async Task A_jwks_request_with_nothing_cached_under_throttling_answers_503_with_the_vaults_Retry_After_at_once()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 5, 1, 0, 0, 0, TimeSpan.Zero));
        _vault.Clock = time;
        _vault.ThrottleRetryAfter = 7;
        _vault.Throttle(0, TimeSpan.FromDays(1));
        await using var host = await StartHostAsync(new KeyClientOptions { Transport = FakeKeyVaultServer.Transport }, time);
        if (Kind == HostKind.Standalone)
        {
            // The standalone host runs a rotation check at start-up (the Functions app's is a daily timer): let its one
            // throttled call come back first, so that what follows counts only the JWKS request's calls.
            await InTestVaults.SettleAsync(() => _vault.Count("throttled") >= 1);
        }

        var throttled = _vault.Count("throttled");

        using var jwks = await host.Client.GetAsync("/.well-known/jwks.json");

        Assert.Equal(HttpStatusCode.ServiceUnavailable, jwks.StatusCode);
        Assert.Equal(TimeSpan.FromSeconds(7), jwks.Headers.RetryAfter?.Delta);
        Assert.Equal(throttled + 1, _vault.Count("throttled"));
    }
}
