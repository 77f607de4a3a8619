using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using TokenService.Configuration;
using TokenService.Keys;
using TokenService.Tests.KeyVault;

namespace TokenService.Tests.Keys;

/// <summary>
/// docs/api.md, "POST /management/keys/rotate": <c>Keys:MaxPublishedKeys</c> bounds the JWKS. Rotations on demand beyond it are refused without
/// creating a key; revocation and the scheduled rotation are never refused; retired keys (still verifying unexpired
/// tokens) count until they leave the JWKS. On a fake clock with the local key provider and with several vaults.
/// </summary>
public sealed class PublishedKeyCapTests : IDisposable
{
    private static readonly DateTimeOffset Start = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "keycap-" + Guid.NewGuid().ToString("N"));
    private readonly FakeTimeProvider _time = new(Start);

    private LocalSigningKeyService Service(int max, TimeSpan? retention = null) => new(
        Microsoft.Extensions.Options.Options.Create(new KeysOptions
        {
            MaxPublishedKeys = max,
            RotationInterval = TimeSpan.FromDays(10),
            PropagationTime = TimeSpan.FromDays(2),
            RetentionTime = retention ?? TimeSpan.FromDays(2),
            DevelopmentKeyPath = Path.Combine(_directory, "keys.json"),
        }),
        _time,
        NullLogger<LocalSigningKeyService>.Instance);

    public void Dispose()
    {
        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }
    }

    private static async Task<IReadOnlyList<SigningKey>> PublishedAsync(ISigningKeyService keys) => (await keys.GetKeySetAsync(CancellationToken.None)).Published;

    [Fact]
    public async Task Immediate_rotations_stop_at_the_cap_and_revoking_a_retired_key_or_its_expiry_makes_room()
    {
        using var keys = Service(max: 4);
        await keys.RunRotationCheckAsync(CancellationToken.None); // the first key
        await keys.RotateNowAsync(immediate: true, CancellationToken.None);
        await keys.RotateNowAsync(immediate: true, CancellationToken.None);
        var before = await PublishedAsync(keys);
        Assert.Equal(3, before.Count); // two retired, one active; the fourth place is the schedule's next key

        var refused = await Assert.ThrowsAsync<KeyLimitReachedException>(() => keys.RotateNowAsync(immediate: true, CancellationToken.None));
        Assert.Equal(4, refused.Limit);
        Assert.Equal(5, refused.Published);
        Assert.Equal(before.Where(k => k.State == SigningKeyState.Retired).Select(k => k.Kid).Order(), refused.RetiredKids.Order());
        Assert.Equal(Start + TimeSpan.FromDays(2), refused.NextRemoval);
        Assert.Equal(before.Select(k => k.Kid), (await PublishedAsync(keys)).Select(k => k.Kid)); // nothing created

        // Revocation is never refused, and a revoked retired key makes room at once.
        Assert.True((await keys.RevokeAsync(refused.RetiredKids[0], CancellationToken.None)).Changed);
        Assert.True((await keys.RotateNowAsync(immediate: true, CancellationToken.None)).Changed);
        await Assert.ThrowsAsync<KeyLimitReachedException>(() => keys.RotateNowAsync(immediate: true, CancellationToken.None));

        // Retired keys stop counting when their retention ends and they leave the JWKS.
        _time.Advance(TimeSpan.FromDays(2));
        Assert.Single(await PublishedAsync(keys));
        Assert.True((await keys.RotateNowAsync(immediate: true, CancellationToken.None)).Changed);
    }

    [Fact]
    public async Task A_rotation_ahead_of_use_beyond_the_cap_is_refused_but_keeping_the_pending_key_is_not()
    {
        using var keys = Service(max: 3, retention: TimeSpan.FromDays(3));
        await keys.RunRotationCheckAsync(CancellationToken.None);
        Assert.True((await keys.RotateNowAsync(immediate: false, CancellationToken.None)).Changed); // pending, activating in 2 days
        Assert.True((await keys.RotateNowAsync(immediate: true, CancellationToken.None)).Changed); // 3: retired, active, pending
        Assert.False((await keys.RotateNowAsync(immediate: false, CancellationToken.None)).Changed); // the pending key is kept

        // The pending key activates: retired, retired, active, and no key pending.
        _time.Advance(TimeSpan.FromDays(2));
        Assert.Equal(3, (await PublishedAsync(keys)).Count);
        var refused = await Assert.ThrowsAsync<KeyLimitReachedException>(() => keys.RotateNowAsync(immediate: false, CancellationToken.None));
        Assert.Equal(4, refused.Published);
        Assert.Equal(3, (await PublishedAsync(keys)).Count);
    }

    [Fact]
    public async Task The_scheduled_rotation_is_never_refused_and_the_active_key_never_outlives_its_rotation_interval()
    {
        // Retention nearly a rotation interval: the smallest cap the start-up check allows for it (2 + 1).
        using var keys = Service(max: 3, retention: TimeSpan.FromDays(9));
        await keys.RunRotationCheckAsync(CancellationToken.None);
        _time.Advance(TimeSpan.FromDays(1));
        await keys.RotateNowAsync(immediate: true, CancellationToken.None); // the operator takes the room there is
        await Assert.ThrowsAsync<KeyLimitReachedException>(() => keys.RotateNowAsync(immediate: true, CancellationToken.None));

        var activations = new List<DateTimeOffset>();
        for (var day = 1; day <= 60; day++)
        {
            _time.Advance(TimeSpan.FromDays(1));
            await keys.RunRotationCheckAsync(CancellationToken.None); // the timer's check: no cap applies to it
            var published = await PublishedAsync(keys);
            var activatedAt = Assert.Single(published, k => k.State == SigningKeyState.Active).ActivatesAt!.Value;
            Assert.True(published.Count <= 3, $"{published.Count} keys published on day {day + 1}");
            Assert.True(_time.GetUtcNow() - activatedAt <= TimeSpan.FromDays(10), $"the active key is {(_time.GetUtcNow() - activatedAt).TotalDays} days old");
            if (!activations.Contains(activatedAt))
            {
                activations.Add(activatedAt);
            }
        }

        Assert.True(activations.Count >= 6, $"only {activations.Count} scheduled activations in 60 days");
    }

    [Fact]
    public void The_schedule_alone_publishes_the_active_and_next_keys_and_the_retired_ones_within_their_retention()
    {
        var options = new KeysOptions { MaxPublishedKeys = 3, RotationInterval = TimeSpan.FromDays(10), PropagationTime = TimeSpan.FromDays(2), RetentionTime = TimeSpan.FromDays(15) };
        Assert.Equal(4, KeyLifecyclePolicy.KeysPublishedBySchedule(options));
        Assert.Equal(3, KeyLifecyclePolicy.KeysPublishedBySchedule(new KeysOptions()));
    }

    [Fact]
    public async Task With_several_vaults_a_refusal_in_one_vault_rotates_none()
    {
        await using var vaults = await InTestVaults.StartAsync(2, o => o.MaxPublishedKeys = 3);
        var instance = vaults.Instance();
        await instance.GetKeySetAsync(CancellationToken.None);
        await instance.Vaults[1].RotateNowAsync(immediate: true, CancellationToken.None); // vault 1: retired and active
        var before = (await instance.GetKeySetAsync(CancellationToken.None)).Published.Select(k => k.Kid).Order().ToList();
        Assert.Equal(3, before.Count);

        await Assert.ThrowsAsync<KeyLimitReachedException>(() => instance.RotateNowAsync(immediate: true, CancellationToken.None));
        Assert.Equal(before, (await instance.GetKeySetAsync(CancellationToken.None)).Published.Select(k => k.Kid).Order());
        Assert.Single((await instance.Vaults[0].GetKeySetAsync(CancellationToken.None)).Published); // vault 0 did not rotate
    }
}
