using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using TokenService.Azure.KeyVault;
using TokenService.Azure.KeyVault.Keys;
using TokenService.Keys;
using TokenService.Tests.Infrastructure;

namespace TokenService.Tests.KeyVault;

/// <summary>
/// Signing across several vaults (<c>Keys:Vaults:N:Uri</c>): each vault its own key and kid, every vault's
/// keys in the JWKS, signing on the least-loaded healthy vault with failover, staggered rotation that stays idempotent
/// under two concurrent timers, revoke finding the vault of a kid, and Managed HSM as a vault.
/// </summary>
public sealed class MultiVaultTests
{
    [Fact]
    public async Task Every_vault_holds_its_own_key_and_the_key_set_publishes_them_all()
    {
        await using var vaults = await InTestVaults.StartAsync(3);
        var instance = vaults.Instance();
        var set = await instance.GetKeySetAsync(CancellationToken.None);

        Assert.Equal(3, set.Published.Count);
        Assert.Equal(3, set.Published.Select(k => k.Kid).Distinct().Count());
        Assert.All(vaults.Servers, server => Assert.Equal(1, server.Count("create")));
        for (var i = 0; i < 3; i++)
        {
            var own = Assert.Single((await instance.Vaults[i].GetKeySetAsync(CancellationToken.None)).Published);
            Assert.StartsWith(vaults.Servers[i].VaultUri.AbsoluteUri, own.ProviderKeyId, StringComparison.Ordinal);
        }

        // Warm: the same merged set again, no vault call.
        var calls = vaults.Servers.Sum(s => s.Count("list") + s.Count("get"));
        Assert.Same(set, await instance.GetKeySetAsync(CancellationToken.None));
        Assert.Equal(calls, vaults.Servers.Sum(s => s.Count("list") + s.Count("get")));
    }

    [Fact]
    public async Task Signing_spreads_over_the_vaults_by_load()
    {
        await using var vaults = await InTestVaults.StartAsync(3);
        var instance = vaults.Instance();
        var kids = new HashSet<string>();
        for (var i = 0; i < 30; i++)
        {
            var signed = await instance.SignWithActiveKeyAsync(InTestVaults.Input, CancellationToken.None);
            Assert.True(signed.Key.VerifySignature(signed.SigningInput.ToArray(), signed.Signature));
            kids.Add(signed.Key.Kid);
        }

        Assert.Equal(3, kids.Count);
        Assert.All(vaults.Servers, server => Assert.InRange(server.Count("sign"), 1 + 9, 1 + 11)); // probe + about a third
    }

    [Theory]
    [InlineData(429)]
    [InlineData(503)]
    public async Task A_throttling_or_failing_vault_fails_over_to_another_vaults_key(int status)
    {
        await using var vaults = await InTestVaults.StartAsync(3);
        var instance = vaults.Instance();
        await instance.GetKeySetAsync(CancellationToken.None);
        var first = (await instance.Vaults[0].GetKeySetAsync(CancellationToken.None)).Active!;
        if (status == 429)
        {
            vaults.Servers[0].Throttle(0, TimeSpan.FromDays(1));
        }
        else
        {
            vaults.Servers[0].FailWithStatus = status;
        }

        var signed = await instance.SignWithActiveKeyAsync(InTestVaults.Input, CancellationToken.None);

        // Another vault's key signed, and the signing input was built for it: its kid is the one a validator looks up.
        Assert.NotEqual(first.Kid, signed.Key.Kid);
        Assert.EndsWith(signed.Key.Kid, System.Text.Encoding.ASCII.GetString(signed.SigningInput.Span), StringComparison.Ordinal);
        Assert.True(signed.Key.VerifySignature(signed.SigningInput.ToArray(), signed.Signature));

        // The vault stays avoided (backoff, or recent failure) while the others are healthy.
        var tried = vaults.Servers[0].Count("throttled") + vaults.Servers[0].Count("sign");
        for (var i = 0; i < 5; i++)
        {
            await instance.SignWithActiveKeyAsync(InTestVaults.Input, CancellationToken.None);
        }

        Assert.Equal(tried, vaults.Servers[0].Count("throttled") + vaults.Servers[0].Count("sign"));
    }

    [Fact]
    public async Task A_vault_that_hangs_past_the_attempt_timeout_fails_over_within_the_budget()
    {
        await using var vaults = await InTestVaults.StartAsync(2, o => o.SignAttemptTimeout = TimeSpan.FromSeconds(3));
        var instance = vaults.Instance();
        await instance.GetKeySetAsync(CancellationToken.None);
        var hung = (await instance.Vaults[0].GetKeySetAsync(CancellationToken.None)).Active!;
        var hold = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        vaults.Servers[0].HoldSigns = hold;
        try
        {
            var signs = vaults.Servers[0].Count("sign");
            var request = instance.SignWithActiveKeyAsync(InTestVaults.Input, CancellationToken.None).AsTask();
            await InTestVaults.SettleAsync(() => vaults.Servers[0].Count("sign") == signs + 1); // vault 0 chosen, and hanging
            vaults.Time.Advance(TimeSpan.FromMilliseconds(2999));
            await Task.Delay(50);
            Assert.False(request.IsCompleted);

            vaults.Time.Advance(TimeSpan.FromMilliseconds(1));
            var signed = await request.WaitAsync(TimeSpan.FromSeconds(30));
            Assert.NotEqual(hung.Kid, signed.Key.Kid);
            Assert.True(signed.Key.VerifySignature(signed.SigningInput.ToArray(), signed.Signature));
        }
        finally
        {
            hold.TrySetResult();
        }
    }

    [Fact]
    public async Task With_every_vault_failing_the_request_is_unavailable()
    {
        await using var vaults = await InTestVaults.StartAsync(2);
        var instance = vaults.Instance();
        await instance.GetKeySetAsync(CancellationToken.None);
        foreach (var server in vaults.Servers)
        {
            server.FailWithStatus = 503;
        }

        var error = await Assert.ThrowsAsync<DependencyUnavailableException>(() => instance.SignWithActiveKeyAsync(InTestVaults.Input, CancellationToken.None).AsTask());
        Assert.Equal("keyvault", error.Dependency);
    }

    /// <summary>
    /// Two instances run the rotation check at the same moments for 30 days with a 9-day rotation: vault i's first
    /// key is recorded 3 × i days early, so the vaults rotate on days 9, 6 and 3 and every 9 days after, never on one
    /// day; each vault has one active key and both instances derive the same keys.
    /// </summary>
    [Fact]
    public async Task Multi_vault_rotation_is_staggered_and_idempotent_under_two_concurrent_timers()
    {
        await using var vaults = await InTestVaults.StartAsync(3, o =>
        {
            o.RotationInterval = TimeSpan.FromDays(9);
            o.PropagationTime = TimeSpan.FromDays(1);
            o.RetentionTime = TimeSpan.FromDays(1);
        });
        var a = vaults.Instance();
        var b = vaults.Instance();
        var activations = new List<(int Vault, int Day, string Kid)>();
        var lastActive = new string?[3];
        for (var day = 0; day <= 30; day++)
        {
            await Task.WhenAll(a.RunRotationCheckAsync(CancellationToken.None), b.RunRotationCheckAsync(CancellationToken.None));
            vaults.Time.Advance(TimeSpan.FromMinutes(10)); // past the reload interval: each instance sees the other's changes
            for (var v = 0; v < 3; v++)
            {
                var setA = await a.Vaults[v].GetKeySetAsync(CancellationToken.None);
                var setB = await b.Vaults[v].GetKeySetAsync(CancellationToken.None);
                Assert.Equal(setA.Published.Select(k => (k.Kid, k.State)), setB.Published.Select(k => (k.Kid, k.State)));
                Assert.Single(setA.Published, k => k.State == SigningKeyState.Active);
                Assert.True(setA.Published.Count(k => k.State == SigningKeyState.Pending) <= 1, $"day {day}, vault {v}: two pending keys");
                if (setA.Active!.Kid != lastActive[v])
                {
                    activations.Add((v, day, setA.Active.Kid));
                    lastActive[v] = setA.Active.Kid;
                }
            }

            vaults.Time.Advance(TimeSpan.FromDays(1) - TimeSpan.FromMinutes(10));
        }

        // The first key of every vault on day 0, then rotations: vault 0 on days 9, 18, 27; vault 1 on 6, 15, 24;
        // vault 2 on 3, 12, 21, 30 (a key activates at the day's check after its planned time).
        var rotations = activations.Where(x => x.Day > 0).ToList();
        Assert.Equal([9, 18, 27], rotations.Where(x => x.Vault == 0).Select(x => x.Day));
        Assert.Equal([6, 15, 24], rotations.Where(x => x.Vault == 1).Select(x => x.Day));
        Assert.Equal([3, 12, 21, 30], rotations.Where(x => x.Vault == 2).Select(x => x.Day));
        Assert.Equal(rotations.Count, rotations.Select(x => x.Day).Distinct().Count()); // never two vaults on one day
    }

    [Fact]
    public async Task Revoke_finds_the_vault_of_the_kid_and_rotate_now_rotates_every_vault()
    {
        await using var vaults = await InTestVaults.StartAsync(3);
        var instance = vaults.Instance();
        await instance.GetKeySetAsync(CancellationToken.None);
        var before = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            before.Add((await instance.Vaults[i].GetKeySetAsync(CancellationToken.None)).Active!.Kid);
        }

        var result = await instance.RevokeAsync(before[1], CancellationToken.None);
        Assert.True(result.Changed, result.Summary);
        Assert.StartsWith("vault 1:", result.Summary, StringComparison.Ordinal);
        var set = await instance.GetKeySetAsync(CancellationToken.None);
        Assert.Null(set.Find(before[1]));
        Assert.NotNull(set.Find(before[0]));
        Assert.NotNull(set.Find(before[2]));
        Assert.NotEqual(before[1], (await instance.Vaults[1].GetKeySetAsync(CancellationToken.None)).Active!.Kid);

        Assert.False((await instance.RevokeAsync(before[1], CancellationToken.None)).Changed); // idempotent

        var rotate = await instance.RotateNowAsync(immediate: false, CancellationToken.None);
        Assert.True(rotate.Changed, rotate.Summary);
        for (var i = 0; i < 3; i++)
        {
            Assert.Single((await instance.Vaults[i].GetKeySetAsync(CancellationToken.None)).Published, k => k.State == SigningKeyState.Pending);
        }
    }

    [Fact]
    public async Task A_managed_hsm_is_a_vault_whose_token_scope_is_managedhsm_azure_net()
    {
        await using var hsm = await FakeKeyVaultServer.StartAsync();
        hsm.PublicVaultUri = new Uri("https://contoso-hsm.managedhsm.azure.net/");
        hsm.Challenge = "Bearer authorization=\"https://login.microsoftonline.com/72f988bf-0000-0000-0000-000000000000\", resource=\"https://managedhsm.azure.net\"";
        var credential = new RecordingCredential();
        var options = new KeyClientOptions { Transport = hsm.RouteToLoopback() }; // challenge resource verified
        var client = new KeyClient(hsm.PublicVaultUri, credential, options);
        using var keys = new KeyVaultSigningKeyService(
            client, Options.Create(new TokenService.Configuration.KeysOptions { KeyName = "signing", Algorithm = "RS256" }), TimeProvider.System,
            Microsoft.Extensions.Logging.Abstractions.NullLogger<KeyVaultSigningKeyService>.Instance);

        var signed = await keys.SignWithActiveKeyAsync(InTestVaults.Input, CancellationToken.None);

        Assert.StartsWith("https://contoso-hsm.managedhsm.azure.net/keys/signing/", signed.Key.ProviderKeyId, StringComparison.Ordinal);
        Assert.True(signed.Key.VerifySignature(signed.SigningInput.ToArray(), signed.Signature));
        Assert.All(credential.Requests, r => Assert.Equal(["https://managedhsm.azure.net/.default"], r.Scopes));
        Assert.NotEmpty(credential.Requests);
    }

    [Fact]
    public async Task The_host_signs_with_several_vaults_and_publishes_every_vaults_key()
    {
        await using var vaults = await InTestVaults.StartAsync(3);
        var settings = new Dictionary<string, string?> { ["Keys:Algorithm"] = "ES256", ["Keys:KeyName"] = "signing" };
        for (var i = 0; i < 3; i++)
        {
            settings[$"Keys:Vaults:{i}:Uri"] = vaults.Servers[i].VaultUri.AbsoluteUri;
        }

        await using var host = await TokenServiceTestHost.StartAsync(settings, configure: builder =>
            builder.Services.AddSingleton(new KeyVaultClientFactory(InTestVaults.Client)));
        // The telemetry decorator forwards the signer-chosen path, so failover between vaults is not bypassed.
        var signer = host.Services.GetRequiredService<ISigningKeyService>();
        Assert.IsType<MultiVaultSigningKeyService>(TokenService.Diagnostics.DiagnosticsServiceCollectionExtensions.Undecorated(signer));

        var login = await host.LoginAsync("multi-vault");
        using var jwks = await host.Client.GetAsync("/.well-known/jwks.json");
        var kids = (await TokenServiceTestHost.JsonAsync(jwks)).GetProperty("keys").EnumerateArray().Select(k => k.GetProperty("kid").GetString()).ToList();
        Assert.Equal(3, kids.Count);
        Assert.Contains(new JsonWebToken(login.AccessToken).Kid, kids);
        Assert.True(await host.IsActiveAsync(login.AccessToken));
        using var refresh = await host.RefreshAsync(login.RefreshToken);
        Assert.Equal(HttpStatusCode.OK, refresh.StatusCode);

        // Through the host's whole signing path (telemetry decorator included): two vaults down, the third signs.
        vaults.Servers[0].FailWithStatus = 503;
        vaults.Servers[1].FailWithStatus = 503;
        var signsBefore = vaults.Servers[2].Count("sign");
        var failedOver = await host.LoginAsync("multi-vault-failover");
        Assert.Equal(signsBefore + 1, vaults.Servers[2].Count("sign"));
        Assert.Contains(new JsonWebToken(failedOver.AccessToken).Kid, kids);
    }

    [Fact]
    public async Task Configuring_both_the_one_vault_form_and_the_list_stops_start_up_with_a_clear_message()
    {
        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => TokenServiceTestHost.StartAsync(new Dictionary<string, string?>
        {
            ["Keys:KeyVaultUri"] = "https://one.vault.azure.net/",
            ["Keys:Vaults:0:Uri"] = "https://two.vault.azure.net/",
        }));
        Assert.Contains("Keys:KeyVaultUri and Keys:Vaults are both set", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("http://plain.vault.azure.net/", "Keys:Vaults:1:Uri must be an https URL")]
    [InlineData("http://127.0.0.1:8443/", "Keys:Vaults:1:Uri must be an https URL")]
    [InlineData("https://ONE.vault.azure.net", "repeats the vault")]
    public async Task Each_listed_vault_is_an_https_url_of_another_vault(string second, string message)
    {
        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => TokenServiceTestHost.StartAsync(new Dictionary<string, string?>
        {
            ["Keys:Vaults:0:Uri"] = "https://one.vault.azure.net/",
            ["Keys:Vaults:1:Uri"] = second,
        }));
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }
}
