using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Hosting.Internal;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using TokenService.Configuration;
using TokenService.Keys;
using TokenService.Tests.Infrastructure;
using static TokenService.Tests.Infrastructure.TokenServiceTestHost;

namespace TokenService.Tests.KeyVault;

/// <summary>
/// Keys with an expiry (docs/key-vault.md). Every key is created with <c>exp</c> and <c>nbf</c>, so a vault where Azure
/// Policy denies keys without an expiration date (or beyond a maximum validity) still gets its first key; a key's
/// <c>exp</c> outlives every token it signs, and a key whose <c>exp</c> is too near for its tokens never signs.
/// </summary>
public sealed class KeyVaultKeyExpiryTests
{
    private static readonly TimeSpan AccessTokenLifetime = TimeSpan.FromMinutes(15); // the default

    [Fact]
    public async Task Under_a_deny_policy_on_keys_without_expiry_the_first_token_request_succeeds_with_a_key_that_has_exp_and_nbf()
    {
        await using var vault = await FakeKeyVaultServer.StartAsync();
        vault.PolicyRequiresExpiry = true;
        vault.PolicyMaximumValidity = TimeSpan.FromDays(100); // the defaults need 90 + 2 + 2 days, and one check interval
        await using var host = await TokenServiceTestHost.StartAsync(HostKind.Standalone, new Dictionary<string, string?>
        {
            ["Keys:KeyVaultUri"] = vault.VaultUri.AbsoluteUri,
            ["Keys:KeyName"] = "token-signing",
            ["Keys:Algorithm"] = "ES256",
        }, services: services => services.AddSingleton(InTestVaults.Client(vault.VaultUri)));

        using var response = await host.ExchangeAsync(host.Idp.IdToken("kv-policy-1"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(0, vault.Count("policy-denied"));
        var (created, nbf, exp) = Assert.Single(vault.CreatedKeys);
        Assert.NotNull(nbf);
        Assert.True(nbf <= created, "nbf after the key's creation: its first signature would be refused");
        Assert.NotNull(exp);
        Assert.InRange(TimeSpan.FromSeconds(exp.Value - created), TimeSpan.FromDays(94), TimeSpan.FromDays(100));
    }

    [Fact]
    public async Task Under_a_maximum_validity_policy_rotation_creates_keys_whose_exp_outlives_every_token_they_sign()
    {
        await using var vaults = await InTestVaults.StartAsync(1, o =>
        {
            o.RotationInterval = TimeSpan.FromDays(9);
            o.PropagationTime = TimeSpan.FromDays(1);
            o.RetentionTime = TimeSpan.FromDays(1);
            o.CheckInterval = TimeSpan.FromDays(1);
            o.MaximumKeyValidity = TimeSpan.FromDays(12);
        });
        var server = vaults.Servers[0];
        server.PolicyRequiresExpiry = true;
        server.PolicyMaximumValidity = TimeSpan.FromDays(12);
        var vault = vaults.Vault(0);

        // 40 days: a token every hour, the rotation check every day.
        var signedWith = new List<(SigningKey Key, DateTimeOffset At)>();
        for (var hour = 0; hour < 40 * 24; hour++)
        {
            if (hour % 24 == 0)
            {
                await vault.RunRotationCheckAsync(CancellationToken.None);
            }

            var signed = await vault.SignWithActiveKeyAsync(InTestVaults.Input, CancellationToken.None);
            signedWith.Add((signed.Key, vaults.Time.GetUtcNow()));
            vaults.Time.Advance(TimeSpan.FromHours(1));
        }

        Assert.Equal(0, server.Count("policy-denied"));
        Assert.True(server.CreatedKeys.Count >= 4, $"{server.CreatedKeys.Count} keys in 40 days with a 9-day rotation");
        Assert.All(server.CreatedKeys, k => Assert.True(k.Exp is not null && k.Nbf is not null && k.Exp - k.Created <= TimeSpan.FromDays(12).TotalSeconds));

        var expiries = (await InTestVaults.Client(server.VaultUri).ListVersionsAsync("signing"))
            .ToDictionary(v => v.Kid(), v => v.ExpiresOn!.Value);
        foreach (var group in signedWith.GroupBy(s => s.Key.ProviderKeyId))
        {
            var exp = expiries[group.Key];
            var activation = group.First().Key.ActivatesAt!.Value;
            var lastToken = group.Max(s => s.At) + AccessTokenLifetime;
            Assert.True(exp >= lastToken, $"key {group.Key} expires {exp:O}, before its last token {lastToken:O}");
            Assert.True(exp >= activation + vaults.Options.RotationInterval + vaults.Options.RetentionTime,
                $"key {group.Key} expires {exp:O}: less than rotation interval + retention after its activation {activation:O}");
        }
    }

    [Fact]
    public async Task A_key_whose_exp_comes_too_near_for_its_tokens_stops_signing_and_a_new_key_signs_at_once()
    {
        await using var vaults = await InTestVaults.StartAsync(1, o => o.PropagationTime = TimeSpan.FromHours(1));
        var server = vaults.Servers[0];
        var vault = vaults.Vault(0);
        var old = (await vault.SignWithActiveKeyAsync(InTestVaults.Input, CancellationToken.None)).Key;

        // Set by hand (or by a policy remediation) to expire within the retention time: a token signed with it now could
        // outlive it.
        server.SetExpiry(old.ProviderKeyId, vaults.Time.GetUtcNow() + vaults.Options.RetentionTime - TimeSpan.FromHours(1));
        vaults.Time.Advance(TimeSpan.FromMinutes(20)); // past the key re-read interval (a quarter of the propagation time)

        var signed = await vault.SignWithActiveKeyAsync(InTestVaults.Input, CancellationToken.None);

        Assert.NotEqual(old.Kid, signed.Key.Kid);
        Assert.True(signed.Key.VerifySignature(signed.SigningInput.ToArray(), signed.Signature));
        var set = await vault.GetKeySetAsync(CancellationToken.None);
        Assert.Equal(SigningKeyState.Retired, set.Find(old.Kid)!.State); // still published: its earlier tokens verify
    }

    [Fact]
    public void A_maximum_key_validity_that_cannot_hold_a_rotation_stops_start_up_saying_how_to_align_the_rotation_interval()
    {
        var validator = new KeysOptionsValidator(
            new HostingEnvironment { EnvironmentName = Environments.Development }, Microsoft.Extensions.Options.Options.Create(new TokenServiceOptions()), []);
        var options = new KeysOptions { MaximumKeyValidity = TimeSpan.FromDays(60) }; // defaults: 90-day rotation, 2 + 2 days

        var result = validator.Validate(null, options);

        Assert.True(result.Failed);
        var error = Assert.Single(result.Failures!, f => f.Contains("MaximumKeyValidity", StringComparison.Ordinal));
        Assert.Contains("set Keys:RotationInterval to at most 55.00:00:00", error, StringComparison.Ordinal);

        options.RotationInterval = TimeSpan.FromDays(55);
        Assert.True(validator.Validate(null, options).Succeeded);
        Assert.Equal(TimeSpan.FromDays(60), options.KeyValidity); // 2 + 55 + 2 + 1 check day: exactly the maximum
    }
}
