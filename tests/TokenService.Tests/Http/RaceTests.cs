using System.Net;
using Microsoft.Extensions.DependencyInjection;
using TokenService.Sessions;
using TokenService.Tests.Infrastructure;
using static TokenService.Tests.Infrastructure.TokenServiceTestHost;

namespace TokenService.Tests.Http;

/// <summary>
/// The race guarantees (compare-and-swap in the store port, no 5xx under contention), written
/// once so that every store runs them: the embedded store here, Table Storage on Azurite elsewhere.
/// </summary>
public static class RaceScenarios
{
    public static async Task TwentyParallelRefreshesHaveExactlyOneWinner(TokenServiceTestHost host)
    {
        var login = await host.LoginAsync("racer-" + Guid.NewGuid().ToString("N"));
        using var start = new ManualResetEventSlim();
        var attempts = Enumerable.Range(0, 20).Select(_ => Task.Run(async () =>
        {
            start.Wait();
            using var response = await host.RefreshAsync(login.RefreshToken);
            return (response.StatusCode, Body: await JsonAsync(response));
        })).ToList();
        start.Set();
        var results = await Task.WhenAll(attempts);

        Assert.DoesNotContain(results, r => (int)r.StatusCode >= 500);
        var winners = results.Where(r => r.StatusCode == HttpStatusCode.OK).ToList();
        Assert.Single(winners);
        Assert.All(results.Where(r => r.StatusCode != HttpStatusCode.OK), r => Assert.Equal("invalid_grant", r.Body.GetProperty("error").GetString()));

        // Never two live refresh tokens: of every token ever issued to the session, at most one still refreshes.
        var issued = new[] { login.RefreshToken, winners[0].Body.GetProperty("refresh_token").GetString()! };
        var stillWorking = 0;
        foreach (var token in issued)
        {
            using var probe = await host.RefreshAsync(token);
            stillWorking += probe.StatusCode == HttpStatusCode.OK ? 1 : 0;
        }

        Assert.True(stillWorking <= 1);
    }

    public static async Task FiftyParallelLoginsLeaveAtMostThreeLiveSessions(TokenServiceTestHost host)
    {
        var user = "crowd-" + Guid.NewGuid().ToString("N");
        using var start = new ManualResetEventSlim();
        var logins = Enumerable.Range(0, 50).Select(_ => Task.Run(async () =>
        {
            var idToken = host.Idp.IdToken(user);
            start.Wait();
            using var response = await host.ExchangeAsync(idToken);
            return response.StatusCode;
        })).ToList();
        start.Set();
        var statuses = await Task.WhenAll(logins);
        Assert.All(statuses, s => Assert.Equal(HttpStatusCode.OK, s));

        var store = host.Services.GetRequiredService<ISessionStore>();
        var sessions = await store.GetUserSessionsAsync(user, CancellationToken.None);
        Assert.Equal(50, sessions.Sessions.Count);
        Assert.Equal(3, sessions.Sessions.Count(s => s.IsLive(DateTimeOffset.UtcNow)));
    }

    /// <summary>
    /// RFC 8693 exchange of one ID token by twenty requests at once: its redemption commits with the session it opens,
    /// so exactly one session opens and every other request is refused as a replay, none with a 5xx.
    /// </summary>
    public static async Task TwentyParallelExchangesOfOneIdTokenOpenOneSession(TokenServiceTestHost host)
    {
        var user = "twin-" + Guid.NewGuid().ToString("N");
        var idToken = host.Idp.IdToken(user);
        using var start = new ManualResetEventSlim();
        var attempts = Enumerable.Range(0, 20).Select(_ => Task.Run(async () =>
        {
            start.Wait();
            using var response = await host.ExchangeAsync(idToken);
            return (response.StatusCode, Body: await JsonAsync(response));
        })).ToList();
        start.Set();
        var results = await Task.WhenAll(attempts);

        Assert.DoesNotContain(results, r => (int)r.StatusCode >= 500);
        var opened = Assert.Single(results, r => r.StatusCode == HttpStatusCode.OK);
        Assert.All(results.Where(r => r.StatusCode != HttpStatusCode.OK), r =>
        {
            Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
            Assert.Equal("invalid_request", r.Body.GetProperty("error").GetString());
        });
        Assert.True(await host.IsActiveAsync(opened.Body.GetProperty("access_token").GetString()!));
    }
}

public sealed class RaceTests(HostFixture fixture) : RaceTests<HostFixture>(fixture);

/// <summary>The same tests against the Functions app (its HTTP functions invoked in-process).</summary>
public sealed class RaceTestsOnFunctions(FunctionsHostFixture fixture) : RaceTests<FunctionsHostFixture>(fixture);

/// <summary>The same tests against the published app under a real Functions host (<see cref="RealFunctionsHostPool"/>).</summary>
[RealFunctionsHostTier]
[Collection(RealFunctionsHostCollection.Name)]
[NotOnRealHost(nameof(RaceTests<RealFunctionsHostFixture>.Fifty_parallel_logins_of_one_user_leave_three_live_sessions), "reads the session store through the app's services, which live in the worker process")]
public sealed class RaceTestsOnRealHost(RealFunctionsHostFixture fixture) : RaceTests<RealFunctionsHostFixture>(fixture);

public abstract class RaceTests<TFixture>(TFixture fixture) : IClassFixture<TFixture>
    where TFixture : HostFixture
{
    private TokenServiceTestHost Host => fixture.Host;

    [Fact]
    public Task Twenty_parallel_refreshes_of_one_token_have_exactly_one_winner_and_no_5xx() => RaceScenarios.TwentyParallelRefreshesHaveExactlyOneWinner(Host);

    [Fact]
    public Task Fifty_parallel_logins_of_one_user_leave_three_live_sessions() => RaceScenarios.FiftyParallelLoginsLeaveAtMostThreeLiveSessions(Host);

    [Fact]
    public Task Twenty_parallel_exchanges_of_one_id_token_open_one_session_and_no_5xx() => RaceScenarios.TwentyParallelExchangesOfOneIdTokenOpenOneSession(Host);
}
