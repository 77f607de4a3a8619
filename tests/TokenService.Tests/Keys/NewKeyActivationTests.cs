using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using TokenService.Configuration;
using TokenService.Keys;

namespace TokenService.Tests.Keys;

/// <summary>
/// A new key's publish-before-use time is measured from when the key exists. With the local provider
/// the clock cannot be moved from inside key generation, so here every read of it moves it on, as a slow
/// creation would between the check's reads; the Key Vault provider is tested with a vault whose key creation
/// takes time (KeyVaultNewKeysTests).
/// </summary>
public sealed class NewKeyActivationTests : IDisposable
{
    private static readonly DateTimeOffset Start = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private readonly string _keyPath = Path.Combine(Path.GetTempPath(), "activation-keys-" + Guid.NewGuid().ToString("N") + ".json");

    public void Dispose() => File.Delete(_keyPath);

    [Fact]
    public async Task A_local_keys_activation_is_at_least_the_propagation_time_after_it_was_created()
    {
        var options = new KeysOptions
        {
            Algorithm = "ES256",
            DevelopmentKeyPath = _keyPath,
            RotationInterval = TimeSpan.FromDays(90),
            PropagationTime = TimeSpan.FromDays(2),
            RetentionTime = TimeSpan.FromDays(2),
        };
        var time = new FakeTimeProvider(Start);
        using var service = new LocalSigningKeyService(Options.Create(options), time, NullLogger<LocalSigningKeyService>.Instance);
        await service.RunRotationCheckAsync(CancellationToken.None);

        time.Advance(options.RotationInterval - options.PropagationTime); // the next key is due
        time.AutoAdvanceAmount = TimeSpan.FromSeconds(5);
        var result = await service.RunRotationCheckAsync(CancellationToken.None);
        time.AutoAdvanceAmount = TimeSpan.Zero;

        Assert.True(result.Changed, result.Summary);
        var pending = Assert.Single((await service.GetKeySetAsync(CancellationToken.None)).Published, k => k.State == SigningKeyState.Pending);
        Assert.True(
            pending.ActivatesAt >= pending.CreatedAt + options.PropagationTime,
            $"created {pending.CreatedAt:O}, activates {pending.ActivatesAt:O}: less than the propagation time after it existed");
    }
}
