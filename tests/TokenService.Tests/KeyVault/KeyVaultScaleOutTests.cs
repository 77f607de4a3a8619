using System.Diagnostics;
using TokenService.Azure.KeyVault;
using Xunit.Abstractions;

namespace TokenService.Tests.KeyVault;

/// <summary>
/// Several instances of the service signing with one vault, each with its own limiter and no
/// coordinator. The in-test vault enforces Key Vault Premium's documented limit for HSM keys (2,000 signs in any 10 s,
/// <c>docs/capacity.md</c>) and answers 429 <c>Throttled</c> with <c>Retry-After</c> beyond it; every instance starts
/// at the configured <c>Keys:SignsPerWindow</c> = the whole limit, lowers its allowance on a 429 and raises it slowly
/// while signs succeed. All on one <see cref="Microsoft.Extensions.Time.Testing.FakeTimeProvider"/>; every client
/// request carries the 10 s dependency budget.
/// </summary>
public sealed class KeyVaultScaleOutTests(ITestOutputHelper output)
{
    private const int VaultLimit = 2000;
    private const int Instances = 8;
    private static readonly TimeSpan VaultWindow = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan Budget = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan Step = TimeSpan.FromMilliseconds(250);

    /// <summary>One instance of the service: its own signing service and limiter, its clients' requests and their outcomes.</summary>
    private sealed class Instance(KeyVaultSigningKeyService service, InTestVaults vaults)
    {
        private readonly Lock _lock = new();
        private readonly List<(DateTimeOffset Submitted, DateTimeOffset Completed, bool Signed)> _outcomes = [];
        private long _submitted;
        private long _completed;

        /// <summary>Failed requests by cause, for the output.</summary>
        public Dictionary<string, int> Failures { get; } = [];
        private double _credit;

        public KeyVaultSigningKeyService Service => service;

        /// <summary>Offers <paramref name="perSecond"/> requests a second for one step (fractions carried to the next).</summary>
        public void Offer(double perSecond)
        {
            _credit += perSecond * Step.TotalSeconds;
            for (; _credit >= 1; _credit--)
            {
                Interlocked.Increment(ref _submitted);
                _ = Run();
            }
        }

        private async Task Run()
        {
            var submitted = vaults.Time.GetUtcNow();
            var signed = false;
            try
            {
                using var deadline = new CancellationTokenSource(Budget, vaults.Time);
                await service.SignWithActiveKeyAsync(InTestVaults.Input, deadline.Token);
                signed = true;
            }
            catch (Exception ex) when (ex is DependencyUnavailableException or OperationCanceledException)
            {
                var kind = ex is OperationCanceledException ? "budget spent" : ex.Message.Contains("queue", StringComparison.Ordinal) ? "queue full" : "other";
                lock (_lock)
                {
                    Failures[kind] = Failures.GetValueOrDefault(kind) + 1;
                }

                // Both answer 503 with Retry-After at the HTTP layer (EndpointInvoker).
            }

            lock (_lock)
            {
                _outcomes.Add((submitted, vaults.Time.GetUtcNow(), signed));
            }

            Interlocked.Increment(ref _completed);
        }

        /// <summary>No request is running code or on its way to the vault: each is done or waits on the fake clock.</summary>
        public bool Settled
        {
            get
            {
                var throttle = service.Throttle;
                return throttle.Calling == 0
                    && Interlocked.Read(ref _completed) + throttle.Queued + throttle.WaitingForBackoff == Interlocked.Read(ref _submitted);
            }
        }

        public bool Idle => Interlocked.Read(ref _completed) == Interlocked.Read(ref _submitted);

        public int Signed(DateTimeOffset from, DateTimeOffset to)
        {
            lock (_lock)
            {
                return _outcomes.Count(o => o.Signed && o.Completed >= from && o.Completed < to);
            }
        }

        public int Failed(DateTimeOffset submittedFrom, DateTimeOffset submittedTo)
        {
            lock (_lock)
            {
                return _outcomes.Count(o => !o.Signed && o.Submitted >= submittedFrom && o.Submitted < submittedTo);
            }
        }

        public int Requests(DateTimeOffset submittedFrom, DateTimeOffset submittedTo)
        {
            lock (_lock)
            {
                return _outcomes.Count(o => o.Submitted >= submittedFrom && o.Submitted < submittedTo);
            }
        }
    }

    private static async Task<(InTestVaults Vaults, Instance[] Instances)> StartAsync()
    {
        var vaults = await InTestVaults.StartAsync(1, o =>
        {
            o.SignsPerWindow = VaultLimit; // each instance configured with the whole vault, as the default is
            o.SignWindow = VaultWindow;
        });
        vaults.ReleaseJitter = null; // the product's default: instances that tick together release in random order
        var instances = new Instance[Instances];
        for (var i = 0; i < Instances; i++)
        {
            instances[i] = new Instance(vaults.Vault(0, Budget), vaults);
            await instances[i].Service.GetKeySetAsync(CancellationToken.None); // the first creates the key, the others load it

            // Instances start at different moments, so their limiters' segments are out of phase, as in a real scale-out.
            vaults.Time.Advance(VaultWindow / VaultSignThrottle.SegmentsPerWindow / Instances);
        }

        vaults.Servers[0].ThrottleSliding(VaultLimit, VaultWindow);
        return (vaults, instances);
    }

    /// <summary>Runs <paramref name="duration"/> of fake time in steps, each instance offering its rate every step.</summary>
    private static async Task RunAsync(InTestVaults vaults, Instance[] instances, TimeSpan duration, Func<int, double> perSecond)
    {
        for (var t = TimeSpan.Zero; t < duration; t += Step)
        {
            // Each step another instance submits first: none is always first at the vault.
            var first = (int)(t / Step) % instances.Length;
            for (var k = 0; k < instances.Length; k++)
            {
                var i = (first + k) % instances.Length;
                instances[i].Offer(perSecond(i));
            }

            await SettleAsync(instances);
            vaults.Time.Advance(Step);

            // Requests the step's limiter segments released reach the vault at this moment, before the next step's
            // new requests: otherwise a test thread submitting synchronously would always beat them to freed capacity.
            await SettleAsync(instances);
        }
    }

    /// <summary>Like <see cref="InTestVaults.SettleAsync"/>, polled more often: this test takes thousands of steps.</summary>
    private static async Task SettleAsync(Instance[] instances)
    {
        var watch = Stopwatch.StartNew();
        for (var stable = 0; stable < 3;)
        {
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(30), "requests did not settle");
            await Task.Delay(1);
            stable = instances.All(i => i.Settled) ? stable + 1 : 0;
        }
    }

    [Fact]
    public async Task Eight_instances_overloading_one_vault_converge_on_its_limit_sharing_it_fairly_and_recover_without_5xx()
    {
        var (vaults, instances) = await StartAsync();
        await using var _ = vaults;
        var server = vaults.Servers[0];
        var fairShare = VaultLimit / VaultWindow.TotalSeconds / Instances; // 25 signs a second

        // Overload: 150 % of the vault's limit for three minutes, spread evenly. The first minute is convergence.
        await RunAsync(vaults, instances, TimeSpan.FromMinutes(1), _ => fairShare * 1.5);
        var measureFrom = vaults.Time.GetUtcNow();
        var (signsBefore, throttledBefore) = (server.Count("sign"), server.Count("throttled"));
        await RunAsync(vaults, instances, TimeSpan.FromMinutes(2), _ => fairShare * 1.5);
        var measureTo = vaults.Time.GetUtcNow();
        var (signs, throttled) = (server.Count("sign") - signsBefore, server.Count("throttled") - throttledBefore);

        // Recovery: offered load at half the limit; after the overload's queues have drained (they hold at most one
        // budget of work), no request within the limit may fail.
        await RunAsync(vaults, instances, TimeSpan.FromMinutes(1), _ => fairShare * 0.5);
        for (var i = 0; i < 100 && !instances.All(x => x.Idle); i++)
        {
            await SettleAsync(instances);
            vaults.Time.Advance(Step);
        }

        var capacity = VaultLimit * ((measureTo - measureFrom) / VaultWindow);
        var aggregate = signs / capacity;
        var perInstance = instances.Select(x => x.Signed(measureFrom, measureTo) / (capacity / Instances)).ToArray();
        var recoveredFrom = measureTo + TimeSpan.FromSeconds(20);
        var withinLimit = instances.Sum(x => x.Requests(recoveredFrom, measureTo + TimeSpan.FromMinutes(1)));
        var failedWithinLimit = instances.Sum(x => x.Failed(recoveredFrom, measureTo + TimeSpan.FromMinutes(1)));
        var failedOverload = instances.Sum(x => x.Failed(measureFrom, measureTo));
        var offeredOverload = instances.Sum(x => x.Requests(measureFrom, measureTo));
        output.WriteLine(
            $"overload, minutes 1-3: vault signed {signs} = {aggregate:P1} of its limit; per instance {perInstance.Min():P0} to {perInstance.Max():P0} of a fair share; "
            + $"{throttled} × 429 ({(double)throttled / signs:P1} of signs); {failedOverload} of {offeredOverload} requests 503 (offered 150 %); "
            + $"allowances now {string.Join(", ", instances.Select(x => x.Service.Throttle.Allowance))}");
        output.WriteLine("per instance: " + string.Join("; ", instances.Select((x, i) => $"{i}: {perInstance[i]:P0}, allowance {x.Service.Throttle.Allowance}")));
        output.WriteLine("503s by cause: " + string.Join("; ", instances.Select((x, i) => $"{i}: " + string.Join(", ", x.Failures.Select(f => $"{f.Key} {f.Value}")))));
        output.WriteLine($"recovery at 50 %, from 20 s after the overload: {failedWithinLimit} of {withinLimit} requests failed");

        // Converged: the vault throttles a small fraction of the calls instead of the whole excess (a fixed
        // per-instance allowance of the whole limit sends the 150 % and draws 429s for two thirds of its calls). The
        // allowances themselves are not compared with the limit: one above its instance's demand does not bind.
        Assert.True(throttled <= signs * 0.03, $"{throttled} × 429 against {signs} signs: the instances did not converge on the vault's limit");
        // The goal (docs/key-vault.md, "Several instances on one vault"): 90 % of the limit, no instance starved and no failure within it. Measured in 6 runs with the
        // random release moment (docs/key-vault.md, "Several instances on one vault"): 94.2-96.4 % of the limit; the
        // instance that fared worst 49-79 % of a fair share, never the same one; 0 failures after the overload in all
        // six. Before it (releases at the segment's start, the same instances first at the vault every segment) the
        // worst got 34-75 %, always among the same instances. Asserted with a margin for a slow machine.
        Assert.True(aggregate >= 0.90, $"the vault signed {aggregate:P1} of its limit");
        Assert.All(perInstance, share => Assert.True(share >= 0.40, $"an instance got {share:P0} of a fair share: starved"));
        Assert.True(withinLimit > 0);
        Assert.True(failedWithinLimit <= withinLimit * 0.01, $"{failedWithinLimit} of {withinLimit} requests within the limit failed after the overload");
    }

    [Fact]
    public async Task Eight_instances_whose_clients_stay_within_the_vaults_limit_never_answer_5xx()
    {
        var (vaults, instances) = await StartAsync();
        await using var _ = vaults;
        var server = vaults.Servers[0];
        var limitPerSecond = VaultLimit / VaultWindow.TotalSeconds;

        // 95 % of the vault's limit, unevenly: instance 0 carries 30 % of it, the others share the rest.
        var start = vaults.Time.GetUtcNow();
        await RunAsync(vaults, instances, TimeSpan.FromMinutes(1), i => limitPerSecond * 0.95 * (i == 0 ? 0.3 : 0.7 / (Instances - 1)));
        for (var i = 0; i < 100 && !instances.All(x => x.Idle); i++)
        {
            await SettleAsync(instances);
            vaults.Time.Advance(Step);
        }

        var end = vaults.Time.GetUtcNow();
        var requests = instances.Sum(x => x.Requests(start, end));
        var failed = instances.Sum(x => x.Failed(start, end));
        output.WriteLine($"{requests} requests at 95 % of the limit, {failed} failed, {server.Count("throttled")} × 429");
        Assert.Equal(0, failed);
        Assert.Equal(0, server.Count("throttled"));
    }

    [Fact]
    public async Task A_request_that_gives_up_after_a_429_leaves_its_permit_to_the_next_request()
    {
        // One instance, a window of a minute, a 2 s budget; the vault throttles with Retry-After: 5 (longer than the
        // budget, so the request answers 503 at once). The vault did not count the throttled call: the permit it held
        // goes back, and once the window has passed the next request signs at once instead of queueing for a minute.
        await using var vaults = await InTestVaults.StartAsync(1, o =>
        {
            o.SignsPerWindow = 100;
            o.SignWindow = TimeSpan.FromMinutes(1);
        });
        var vault = vaults.Vault(0, budget: TimeSpan.FromSeconds(2));
        await vault.GetKeySetAsync(CancellationToken.None);
        vaults.Time.Advance(TimeSpan.FromSeconds(65)); // whatever the first key's creation signed has left the window
        var server = vaults.Servers[0];
        server.ThrottleRetryAfter = 5;
        server.Throttle(0, TimeSpan.FromDays(1));

        var error = await Assert.ThrowsAsync<DependencyUnavailableException>(
            () => vault.SignWithActiveKeyAsync(InTestVaults.Input, CancellationToken.None).AsTask().WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal(TimeSpan.FromSeconds(5), error.RetryAfter);
        Assert.Equal(1, vault.Throttle.Allowance); // cut from what it had sent: one sign
        Assert.Equal(vault.Throttle.Allowance, vault.Throttle.Headroom);

        server.Throttle(-1, TimeSpan.FromSeconds(1));
        vaults.Time.Advance(TimeSpan.FromSeconds(5));
        var signed = await vault.SignWithActiveKeyAsync(InTestVaults.Input, CancellationToken.None).AsTask().WaitAsync(TimeSpan.FromSeconds(5));
        Assert.True(signed.Key.VerifySignature(signed.SigningInput.ToArray(), signed.Signature));
        Assert.Equal(1, server.Count("throttled"));
    }
}
