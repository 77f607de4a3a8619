using TokenService.Azure.KeyVault;
using TokenService.Keys;

namespace TokenService.Tests.KeyVault;

/// <summary>
/// Signing under a vault's limit. The in-test vault enforces N operations per window and answers 429
/// <c>Throttled</c> without Retry-After, as Key Vault does; the client-side limiter keeps signing under it, requests
/// queue within their budget, and a 429 opens one backoff window (Retry-After, else 1, 2, 4, 8, 16 s) shared by every
/// request to the vault. All timing is on a <see cref="Microsoft.Extensions.Time.Testing.FakeTimeProvider"/>.
/// </summary>
public sealed class KeyVaultThrottlingTests
{
    private static readonly TimeSpan Step = TimeSpan.FromMilliseconds(100);

    private sealed class Load(KeyVaultSigningKeyService vault, InTestVaults vaults, TimeSpan budget)
    {
        public readonly List<Task<TimeSpan>> Requests = [];

        /// <summary>One request with its own budget; completes with its latency on the fake clock.</summary>
        public void Submit()
        {
            Requests.Add(Run());

            async Task<TimeSpan> Run()
            {
                var start = vaults.Time.GetUtcNow();
                using var deadline = new CancellationTokenSource(budget, vaults.Time);
                await vault.SignWithActiveKeyAsync(InTestVaults.Input, deadline.Token);
                return vaults.Time.GetUtcNow() - start;
            }
        }

        /// <summary>Every request is done or waiting for a permit: none is on its way to the vault.</summary>
        public Task SettleAsync() => InTestVaults.SettleAsync(() => Requests.Count(r => r.IsCompleted) + vault.Throttle.Queued == Requests.Count);
    }

    /// <summary>A vault limited to 20 signs per second on both sides; 30 requests per second offered for 10 s (150 %).</summary>
    private static async Task<(InTestVaults Vaults, KeyVaultSigningKeyService Vault, Load Load)> OverloadAsync(TimeSpan budget)
    {
        var vaults = await InTestVaults.StartAsync(1, o =>
        {
            o.SignsPerWindow = 20;
            o.SignWindow = TimeSpan.FromSeconds(1);
        });
        var vault = vaults.Vault(0, budget);
        await vault.GetKeySetAsync(CancellationToken.None); // the first key, before the vault starts counting
        vaults.Servers[0].Throttle(20, TimeSpan.FromSeconds(1));
        var load = new Load(vault, vaults, budget);
        for (var step = 0; step < 100; step++)
        {
            for (var i = 0; i < 3; i++)
            {
                load.Submit();
            }

            await load.SettleAsync();
            vaults.Time.Advance(Step);
        }

        for (var step = 0; step < 100 && load.Requests.Any(r => !r.IsCompleted); step++)
        {
            await load.SettleAsync();
            vaults.Time.Advance(Step);
        }

        return (vaults, vault, load);
    }

    [Fact]
    public async Task A_vault_at_150_percent_of_its_limit_for_10_s_queues_signs_within_the_budget_and_is_never_throttled()
    {
        // Backlog grows by 10 a second for 10 s and drains at 20 a second: the longest wait is about 5 s.
        var budget = TimeSpan.FromSeconds(6);
        var (vaults, _, load) = await OverloadAsync(budget);
        await using var _ = vaults;

        var latencies = await Task.WhenAll(load.Requests);
        Assert.Equal(300, latencies.Length);
        Assert.Equal(0, vaults.Servers[0].Count("throttled"));
        Assert.True(latencies.Max() <= budget, $"slowest sign took {latencies.Max()} on the fake clock, over the {budget} budget");
        Assert.True(latencies.Max() >= TimeSpan.FromSeconds(4), "the limiter did not queue: the vault would have been asked too fast");
    }

    [Fact]
    public async Task Past_the_budget_requests_fail_as_unavailable_never_as_a_429_from_the_vault()
    {
        var budget = TimeSpan.FromSeconds(2);
        var (vaults, _, load) = await OverloadAsync(budget);
        await using var _ = vaults;

        var failures = new List<Exception>();
        foreach (var request in load.Requests)
        {
            try
            {
                Assert.True(await request <= budget);
            }
            catch (Exception ex) when (ex is DependencyUnavailableException or OperationCanceledException)
            {
                // DependencyUnavailableException (queue beyond what the budget drains) and the budget's cancellation
                // both answer 503 with Retry-After at the HTTP layer (EndpointInvoker), before anything is committed.
                failures.Add(ex);
            }
        }

        Assert.NotEmpty(failures);
        Assert.All(failures.OfType<DependencyUnavailableException>(), ex => Assert.True(ex.RetryAfter > TimeSpan.Zero));
        // The limiter admits 20 × 20/21 a second (a permit returns one segment late): over the 10 s, about 190.
        var signed = load.Requests.Count(r => r.IsCompletedSuccessfully);
        Assert.True(signed >= 180, $"{signed} signed: the vault's capacity went unused");
        Assert.Equal(0, vaults.Servers[0].Count("throttled"));
    }

    [Fact]
    public async Task A_429_opens_one_backoff_window_that_concurrent_requests_share()
    {
        await using var vaults = await InTestVaults.StartAsync(1, o => o.SignWindow = TimeSpan.FromSeconds(1));
        var vault = vaults.Vault(0);
        await vault.GetKeySetAsync(CancellationToken.None);
        var server = vaults.Servers[0];
        server.Throttle(5, TimeSpan.FromSeconds(1)); // the client does not know this vault's limit is lower

        var requests = Enumerable.Range(0, 8).Select(_ => vault.SignWithActiveKeyAsync(InTestVaults.Input, CancellationToken.None).AsTask()).ToList();
        // The vault counts a 429 before the client reads it: settled once the client has opened its window too.
        await InTestVaults.SettleAsync(() => requests.Count(r => r.IsCompleted) == 5 && server.Count("throttled") == 3 && vault.Throttle.BackoffRemaining > TimeSpan.Zero);

        // Three 429s, one window of 1 s (no Retry-After: the first step of 1, 2, 4, 8, 16 s), not three.
        Assert.Equal(TimeSpan.FromSeconds(1), vault.Throttle.BackoffRemaining);
        vaults.Time.Advance(TimeSpan.FromMilliseconds(999));
        await Task.Delay(50);
        Assert.Equal(3, server.Count("throttled"));
        Assert.Equal(5, requests.Count(r => r.IsCompleted));

        vaults.Time.Advance(TimeSpan.FromMilliseconds(1));
        await Task.WhenAll(requests).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(3, server.Count("throttled")); // the three waited and went once each: no retry storm
    }

    [Fact]
    public async Task Without_Retry_After_backoff_doubles_1_2_4_8_s_and_a_window_beyond_the_budget_answers_at_once()
    {
        await using var vaults = await InTestVaults.StartAsync(1);
        var vault = vaults.Vault(0, budget: TimeSpan.FromSeconds(10));
        await vault.GetKeySetAsync(CancellationToken.None);
        var server = vaults.Servers[0];
        server.Throttle(0, TimeSpan.FromDays(1));

        var request = vault.SignWithActiveKeyAsync(InTestVaults.Input, CancellationToken.None).AsTask();
        var calls = 1;
        foreach (var window in new[] { 1, 2, 4, 8 })
        {
            await InTestVaults.SettleAsync(() => server.Count("throttled") == calls && vault.Throttle.BackoffRemaining > TimeSpan.Zero);
            Assert.Equal(TimeSpan.FromSeconds(window), vault.Throttle.BackoffRemaining);
            vaults.Time.Advance(TimeSpan.FromSeconds(window));
            calls++;
        }

        // The fifth 429 opens a 16 s window, longer than the 10 s budget: no request waits for it.
        var error = await Assert.ThrowsAsync<DependencyUnavailableException>(() => request.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal(TimeSpan.FromSeconds(16), error.RetryAfter);
        Assert.Equal(5, server.Count("throttled"));
    }

    [Fact]
    public async Task Retry_After_sets_the_backoff_window()
    {
        await using var vaults = await InTestVaults.StartAsync(1);
        var vault = vaults.Vault(0);
        await vault.GetKeySetAsync(CancellationToken.None);
        var server = vaults.Servers[0];
        server.ThrottleRetryAfter = 3;
        server.Throttle(0, TimeSpan.FromDays(1));

        var request = vault.SignWithActiveKeyAsync(InTestVaults.Input, CancellationToken.None).AsTask();
        await InTestVaults.SettleAsync(() => server.Count("throttled") == 1 && vault.Throttle.BackoffRemaining > TimeSpan.Zero);
        Assert.Equal(TimeSpan.FromSeconds(3), vault.Throttle.BackoffRemaining);

        server.Throttle(-1, TimeSpan.FromSeconds(1));
        var signs = server.Count("sign");
        vaults.Time.Advance(TimeSpan.FromSeconds(2));
        await Task.Delay(50);
        Assert.Equal(signs, server.Count("sign")); // not after 1 s: the vault said 3

        vaults.Time.Advance(TimeSpan.FromSeconds(1));
        var signed = await request.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(signs + 1, server.Count("sign"));
        Assert.True(signed.Key.VerifySignature(signed.SigningInput.ToArray(), signed.Signature));
    }

    [Fact]
    public async Task While_a_backoff_window_is_open_new_requests_wait_for_it_instead_of_calling_the_vault()
    {
        await using var vaults = await InTestVaults.StartAsync(1);
        var vault = vaults.Vault(0);
        await vault.GetKeySetAsync(CancellationToken.None);
        var server = vaults.Servers[0];
        server.Throttle(0, TimeSpan.FromDays(1));
        var first = vault.SignWithActiveKeyAsync(InTestVaults.Input, CancellationToken.None).AsTask();
        await InTestVaults.SettleAsync(() => server.Count("throttled") == 1 && vault.Throttle.BackoffRemaining > TimeSpan.Zero);

        server.Throttle(-1, TimeSpan.FromSeconds(1));
        var later = Enumerable.Range(0, 5).Select(_ => vault.SignWithActiveKeyAsync(InTestVaults.Input, CancellationToken.None).AsTask()).ToList();
        await Task.Delay(50);
        Assert.Equal(1, server.Count("throttled"));
        Assert.All(later, r => Assert.False(r.IsCompleted));

        vaults.Time.Advance(TimeSpan.FromSeconds(1));
        await Task.WhenAll([first, .. later]).WaitAsync(TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task An_idle_limiter_stops_waking_up_and_still_admits_exactly_its_limit_when_signing_resumes()
    {
        // Found by the year simulation (YearOfOperationTests): the replenishment timer ticked every half second for ever,
        // signing or not (72,000 wake-ups an idle hour, and on a fake clock every one of them is run).
        var time = new CountingTime(new Microsoft.Extensions.Time.Testing.FakeTimeProvider(InTestVaults.Start));
        using var throttle = new VaultSignThrottle(5, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(10), time) { ReleaseJitter = TimeSpan.Zero };

        for (var round = 0; round < 2; round++)
        {
            for (var i = 0; i < 5; i++)
            {
                Assert.NotNull(await throttle.AcquireAsync(CancellationToken.None)); // the full limit at once
            }

            var sixth = throttle.AcquireAsync(CancellationToken.None).AsTask();
            time.Inner.Advance(TimeSpan.FromSeconds(1)); // a permit returns a window and a segment after its segment began
            Assert.False(sixth.IsCompleted, "a sixth permit within the window");
            time.Inner.Advance(TimeSpan.FromTicks(TimeSpan.FromSeconds(1).Ticks / VaultSignThrottle.SegmentsPerWindow));
            Assert.NotNull(await sixth.WaitAsync(TimeSpan.FromSeconds(10)));

            var ticks = time.Callbacks;
            time.Inner.Advance(TimeSpan.FromHours(1)); // idle
            Assert.InRange(time.Callbacks - ticks, 1, VaultSignThrottle.SegmentsPerWindow + 2); // until the last permit is back
        }
    }

    /// <summary>A fake clock that counts the timer callbacks it runs.</summary>
    private sealed class CountingTime(Microsoft.Extensions.Time.Testing.FakeTimeProvider inner) : TimeProvider
    {
        private int _callbacks;

        public Microsoft.Extensions.Time.Testing.FakeTimeProvider Inner { get; } = inner;

        public int Callbacks => Volatile.Read(ref _callbacks);

        public override DateTimeOffset GetUtcNow() => Inner.GetUtcNow();

        public override long GetTimestamp() => Inner.GetTimestamp();

        public override long TimestampFrequency => Inner.TimestampFrequency;

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) =>
            Inner.CreateTimer(s =>
            {
                Interlocked.Increment(ref _callbacks);
                callback(s);
            }, state, dueTime, period);
    }
}
