using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using TokenService.Sessions;
using TokenService.Tests.Infrastructure;
using static TokenService.Tests.Infrastructure.TokenServiceTestHost;

namespace TokenService.Tests.Faults;

/// <summary>
/// A dependency that never answers (a frozen storage account) ends the request with 503 when the request's budget
/// runs out, not after the transport's retries; nothing changes, and the same refresh token works once the store
/// is back. Time is a FakeTimeProvider: the budget elapses when the test advances it, never on the wall clock.
/// </summary>
public sealed class DependencyBudgetTests
{
    private static readonly DateTimeOffset Start = DateTimeOffset.Parse("2026-11-30T12:00:00Z", System.Globalization.CultureInfo.InvariantCulture);

    [Theory]
    [InlineData(HostKind.Standalone)]
    [InlineData(HostKind.Functions)]
    public async Task A_store_that_never_answers_gets_503_at_the_end_of_the_budget_and_changes_nothing(HostKind kind)
    {
        var time = new FakeTimeProvider(Start);
        var store = new FreezableStore(new InMemorySessionStore());
        await using var host = kind == HostKind.Functions
            ? await StartFunctionsAsync(new Dictionary<string, string?> { ["TokenService:DependencyBudget"] = "00:00:08" }, time: time, services: s => s.AddSingleton<ISessionStore>(store))
            : await StartAsync(new Dictionary<string, string?> { ["TokenService:DependencyBudget"] = "00:00:08" }, time: time, configure: b => b.Services.AddSingleton<ISessionStore>(store));
        var login = await host.LoginAsync("frozen");

        store.Frozen = true;
        var refreshing = host.RefreshAsync(login.RefreshToken);
        await store.Entered.Task.WaitAsync(TimeSpan.FromSeconds(30)); // the request is now waiting on the store
        time.Advance(TimeSpan.FromSeconds(7));
        Assert.False(refreshing.IsCompleted);
        time.Advance(TimeSpan.FromSeconds(1));
        using (var refresh = await refreshing.WaitAsync(TimeSpan.FromSeconds(30)))
        {
            await AssertOAuthErrorAsync(refresh, "temporarily_unavailable", HttpStatusCode.ServiceUnavailable);
            Assert.NotNull(refresh.Headers.RetryAfter);
        }

        store.Frozen = false;
        using var retry = await host.RefreshAsync(login.RefreshToken);
        Assert.Equal(HttpStatusCode.OK, retry.StatusCode);
    }

    [Fact]
    public async Task Healthz_answers_503_within_its_short_probe_budget_and_caches_the_result_briefly()
    {
        var time = new FakeTimeProvider(Start);
        var store = new FreezableStore(new InMemorySessionStore());
        await using var host = await StartAsync(new Dictionary<string, string?> { ["TokenService:HealthProbeBudget"] = "00:00:02" }, time: time, configure: b => b.Services.AddSingleton<ISessionStore>(store));
        using (var healthy = await host.Client.GetAsync("/healthz"))
        {
            Assert.Equal(HttpStatusCode.OK, healthy.StatusCode);
        }

        time.Advance(TimeSpan.FromSeconds(6)); // past the cached result
        store.Frozen = true;
        var probing = host.Client.GetAsync("/healthz");
        await store.Entered.Task.WaitAsync(TimeSpan.FromSeconds(30));
        time.Advance(TimeSpan.FromSeconds(2)); // HealthProbeBudget, far below the request budget
        using (var unhealthy = await probing.WaitAsync(TimeSpan.FromSeconds(30)))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, unhealthy.StatusCode);
            Assert.NotNull(unhealthy.Headers.RetryAfter);
            Assert.Equal("unavailable", (await JsonAsync(unhealthy)).GetProperty("checks").GetProperty("store").GetString());
        }

        // Within the cache period a second probe is answered without touching the store.
        var calls = store.Calls;
        using (var cached = await host.Client.GetAsync("/healthz"))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, cached.StatusCode);
        }

        Assert.Equal(calls, store.Calls);
        store.Frozen = false;
    }

    [Fact]
    public async Task Healthz_answers_503_not_500_when_no_azure_credential_is_usable()
    {
        // Production without a managed identity: Azure.Identity throws CredentialUnavailableException from the store.
        await using var host = await StartAsync(configure: b => b.Services.AddSingleton<ISessionStore>(new UnusableCredentialStore()));
        using var response = await host.Client.GetAsync("/healthz");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.NotNull(response.Headers.RetryAfter);
        Assert.Equal("unavailable", (await JsonAsync(response)).GetProperty("checks").GetProperty("store").GetString());
    }

    private sealed class UnusableCredentialStore : ISessionStore
    {
        private static global::Azure.Identity.CredentialUnavailableException Unusable() => new("No managed identity endpoint found.");

        public ValueTask<SessionRecord?> GetSessionAsync(string sessionId, CancellationToken cancellationToken) => throw Unusable();

        public ValueTask<UserSessions> GetUserSessionsAsync(string userId, CancellationToken cancellationToken) => throw Unusable();

        public ValueTask<StoreWriteResult> ReplaceSessionAsync(SessionRecord updated, CancellationToken cancellationToken) => throw Unusable();

        public ValueTask<StoreWriteStatus> CommitAsync(UserSessionsChange change, CancellationToken cancellationToken) => throw Unusable();
    }

    /// <summary>A store whose calls, while frozen, wait until their cancellation token fires.</summary>
    private sealed class FreezableStore(ISessionStore inner) : ISessionStore
    {
        private int _calls;

        public volatile bool Frozen;

        public TaskCompletionSource Entered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public int Calls => Volatile.Read(ref _calls);

        public async ValueTask<SessionRecord?> GetSessionAsync(string sessionId, CancellationToken cancellationToken)
        {
            await WaitWhileFrozenAsync(cancellationToken);
            return await inner.GetSessionAsync(sessionId, cancellationToken);
        }

        public async ValueTask<UserSessions> GetUserSessionsAsync(string userId, CancellationToken cancellationToken)
        {
            await WaitWhileFrozenAsync(cancellationToken);
            return await inner.GetUserSessionsAsync(userId, cancellationToken);
        }

        public async ValueTask<StoreWriteResult> ReplaceSessionAsync(SessionRecord updated, CancellationToken cancellationToken)
        {
            await WaitWhileFrozenAsync(cancellationToken);
            return await inner.ReplaceSessionAsync(updated, cancellationToken);
        }

        public async ValueTask<StoreWriteStatus> CommitAsync(UserSessionsChange change, CancellationToken cancellationToken)
        {
            await WaitWhileFrozenAsync(cancellationToken);
            return await inner.CommitAsync(change, cancellationToken);
        }

        private async Task WaitWhileFrozenAsync(CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _calls);
            if (Frozen)
            {
                Entered.TrySetResult();
                await Task.Delay(Timeout.Infinite, cancellationToken);
            }
        }
    }
}
