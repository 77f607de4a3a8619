using TokenService.Configuration;
using TokenService.Keys;

namespace TokenService.Tests.Keys;

public sealed class KeyLifecyclePolicyTests
{
    private static readonly DateTimeOffset T0 = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private static readonly KeysOptions Options = new()
    {
        RotationInterval = TimeSpan.FromDays(90),
        PropagationTime = TimeSpan.FromDays(2),
        RetentionTime = TimeSpan.FromDays(3),
    };

    private static KeyVersionInfo Key(string id, DateTimeOffset created, DateTimeOffset activates) => new(id, created, activates);

    [Fact]
    public void With_no_key_the_first_is_created_to_sign_at_once()
    {
        var plan = KeyLifecyclePolicy.Evaluate([], T0, Options);
        Assert.Equal(T0, plan.CreateKeyActivatingAt);
        Assert.Empty(plan.Published);
    }

    [Fact]
    public void The_next_key_is_published_propagation_time_before_the_active_key_turns_ninety_days_old()
    {
        var a = Key("a", T0, T0);
        var early = KeyLifecyclePolicy.Evaluate([a], T0.AddDays(87), Options);
        Assert.Null(early.CreateKeyActivatingAt);
        Assert.Equal(T0.AddDays(88), early.NextTransition);

        var onTime = KeyLifecyclePolicy.Evaluate([a], T0.AddDays(88), Options);
        Assert.Equal(T0.AddDays(90), onTime.CreateKeyActivatingAt);

        // A check an hour late still publishes the key a full propagation time before it signs.
        var due = KeyLifecyclePolicy.Evaluate([a], T0.AddDays(88).AddHours(1), Options);
        Assert.Equal(T0.AddDays(90).AddHours(1), due.CreateKeyActivatingAt);

        // A late check still gives caches the full propagation time.
        var late = KeyLifecyclePolicy.Evaluate([a], T0.AddDays(95), Options);
        Assert.Equal(T0.AddDays(97), late.CreateKeyActivatingAt);
    }

    [Fact]
    public void States_follow_the_clock_pending_active_retired_removed()
    {
        var a = Key("a", T0, T0);
        var b = Key("b", T0.AddDays(88), T0.AddDays(90));

        var beforeSwitch = KeyLifecyclePolicy.Evaluate([a, b], T0.AddDays(89), Options);
        Assert.Equal(SigningKeyState.Active, beforeSwitch.Published.Single(p => p.Key == a).State);
        Assert.Equal(SigningKeyState.Pending, beforeSwitch.Published.Single(p => p.Key == b).State);
        Assert.Null(beforeSwitch.CreateKeyActivatingAt);
        Assert.Equal(T0.AddDays(90), beforeSwitch.NextTransition);

        var afterSwitch = KeyLifecyclePolicy.Evaluate([a, b], T0.AddDays(90), Options);
        var retired = afterSwitch.Published.Single(p => p.Key == a);
        Assert.Equal(SigningKeyState.Retired, retired.State);
        Assert.Equal(T0.AddDays(90), retired.RetiresAt);
        Assert.Equal(T0.AddDays(93), retired.RemoveAt);
        Assert.Equal(SigningKeyState.Active, afterSwitch.Published.Single(p => p.Key == b).State);

        var removed = KeyLifecyclePolicy.Evaluate([a, b], T0.AddDays(93), Options);
        Assert.Equal([a], removed.ToRemove);
        Assert.Single(removed.Published);
    }

    [Fact]
    public void Two_pending_keys_created_at_once_leave_exactly_one()
    {
        var a = Key("a", T0, T0);
        var b1 = Key("b1", T0.AddDays(88), T0.AddDays(90));
        var b2 = Key("b2", T0.AddDays(88).AddSeconds(1), T0.AddDays(90).AddSeconds(1));
        var plan = KeyLifecyclePolicy.Evaluate([a, b1, b2], T0.AddDays(89), Options);
        Assert.Equal([b1], plan.ToRemove);
        Assert.Equal(["a", "b2"], plan.Published.Select(p => p.Key.ProviderKeyId).ToArray());
        Assert.Null(plan.CreateKeyActivatingAt);
    }

    [Fact]
    public void A_new_keys_activation_is_measured_from_when_it_exists()
    {
        var planned = T0.AddDays(90);

        // Created within the time the plan allowed for: the rotation time stands.
        Assert.Equal(planned, KeyLifecyclePolicy.ActivationOfNewKey(planned, isFirstKey: false, T0.AddDays(88), Options));

        // Creation took a minute past the planned publication: activation moves by that minute.
        Assert.Equal(planned.AddMinutes(1), KeyLifecyclePolicy.ActivationOfNewKey(planned, isFirstKey: false, T0.AddDays(88).AddMinutes(1), Options));

        // The first key signs as soon as it exists.
        Assert.Equal(T0.AddSeconds(5), KeyLifecyclePolicy.ActivationOfNewKey(T0, isFirstKey: true, T0.AddSeconds(5), Options));
    }
}
