using System.Net;
using Azure;
using Azure.Core;
using Azure.Core.Pipeline;
using Azure.Data.Tables;
using TokenService.Azure.Tables;
using TokenService.Azure.Tables.Stores;
using TokenService.Sessions;
using TokenService.Tests.Http;
using TokenService.Tests.Infrastructure;
using TokenService.Tests.Sessions;
using static TokenService.Tests.Infrastructure.TokenServiceTestHost;
using Microsoft.Extensions.Time.Testing;

namespace TokenService.Tests.Tables;

/// <summary>The store contract of the embedded store, on Table Storage (Azurite).</summary>
[Collection(AzuriteCollection.Name)]
public sealed class TableSessionStoreContractTests(AzuriteFixture azurite) : SessionStoreContractTests
{
    protected override ISessionStore Store { get; } = new TableSessionStore(new TableProvisioner(azurite.CreateClient()));
}

[Collection(AzuriteCollection.Name)]
public sealed class TableTokenMarkerStoreTests(AzuriteFixture azurite)
{
    private readonly FakeTimeProvider _time = new(DateTimeOffset.UtcNow);

    [Fact]
    public async Task Replay_markers_admit_a_key_once_until_it_expires_and_cleanup_removes_only_expired_ones()
    {
        var store = new TableTokenMarkerStore(new TableProvisioner(azurite.CreateClient()), _time);
        var key = "replay-" + Guid.NewGuid().ToString("N");
        Assert.True(await store.TryAddAsync(key, _time.GetUtcNow().AddMinutes(5), default));
        Assert.False(await store.TryAddAsync(key, _time.GetUtcNow().AddMinutes(5), default));
        await store.RemoveAsync(key, default);
        Assert.True(await store.TryAddAsync(key, _time.GetUtcNow().AddMinutes(5), default));

        _time.Advance(TimeSpan.FromMinutes(6));
        Assert.True(await store.TryAddAsync(key, _time.GetUtcNow().AddMinutes(5), default), "an expired marker no longer blocks");

        var jti = "jti-" + Guid.NewGuid().ToString("N");
        var live = "jti-" + Guid.NewGuid().ToString("N");
        await store.DenyAsync(jti, _time.GetUtcNow().AddMinutes(1), default);
        await store.DenyAsync(jti, _time.GetUtcNow().AddMinutes(1), default); // idempotent
        await store.DenyAsync(live, _time.GetUtcNow().AddHours(1), default);
        Assert.True(await store.IsDeniedAsync(jti, default));
        Assert.False(await store.IsDeniedAsync("never-" + Guid.NewGuid().ToString("N"), default));

        Assert.True(await store.PurgeExpiredAsync(_time.GetUtcNow().AddMinutes(2), default) >= 1);
        Assert.False(await store.IsDeniedAsync(jti, default));
        Assert.True(await store.IsDeniedAsync(live, default));
    }
}

/// <summary>The HTTP guarantees (no 5xx, compare-and-swap on sessions, docs/api.md "Errors") with <c>Storage__TableConnectionString</c> pointing at Azurite.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class AzuriteHostTests(AzuriteFixture azurite)
{
    private Task<TokenServiceTestHost> StartAsync(string? keyPath = null, TestIdp? idp = null) =>
        TokenServiceTestHost.StartAsync(new Dictionary<string, string?>
        {
            ["Storage:TableConnectionString"] = azurite.ConnectionString,
            ["Keys:DevelopmentKeyPath"] = keyPath ?? Path.Combine(Path.GetTempPath(), "az-keys-" + Guid.NewGuid().ToString("N"), "k.json"),
        }, idp: idp);

    [Fact]
    public async Task Issue_refresh_reuse_revoke_and_introspection_work_on_table_storage()
    {
        await using var host = await StartAsync();
        var login = await host.LoginAsync("table-user-" + Guid.NewGuid().ToString("N"));
        using var refresh = await host.RefreshAsync(login.RefreshToken);
        Assert.Equal(HttpStatusCode.OK, refresh.StatusCode);
        var rotated = (await JsonAsync(refresh)).GetProperty("refresh_token").GetString()!;
        using var reuse = await host.RefreshAsync(login.RefreshToken);
        await AssertOAuthErrorAsync(reuse, "invalid_grant");
        using var dead = await host.RefreshAsync(rotated);
        await AssertOAuthErrorAsync(dead, "invalid_grant");

        var second = await host.LoginAsync("table-user-" + Guid.NewGuid().ToString("N"));
        Assert.True(await host.IsActiveAsync(second.AccessToken));
        using var revokeAccess = await host.PostFormAsync("/oauth2/revoke", [new("token", second.AccessToken)], Basic("web", WebSecret));
        Assert.False(await host.IsActiveAsync(second.AccessToken));
        using var replay = await host.ExchangeAsync(host.Idp.IdToken("x") is var t ? t : t);
        using var replayed = await host.ExchangeAsync(t);
        await AssertOAuthErrorAsync(replayed, "invalid_request");
    }

    [Fact]
    public async Task Twenty_parallel_refreshes_have_exactly_one_winner_on_table_storage()
    {
        await using var host = await StartAsync();
        await RaceScenarios.TwentyParallelRefreshesHaveExactlyOneWinner(host);
    }

    [Fact]
    public async Task Fifty_parallel_logins_leave_three_live_sessions_on_table_storage()
    {
        await using var host = await StartAsync();
        await RaceScenarios.FiftyParallelLoginsLeaveAtMostThreeLiveSessions(host);
    }

    [Fact]
    public async Task Twenty_parallel_exchanges_of_one_id_token_open_one_session_on_table_storage()
    {
        await using var host = await StartAsync();
        await RaceScenarios.TwentyParallelExchangesOfOneIdTokenOpenOneSession(host);
    }

    [Fact]
    public async Task A_refresh_token_issued_before_a_restart_still_refreshes_after_it()
    {
        var keyPath = Path.Combine(Path.GetTempPath(), "az-restart-" + Guid.NewGuid().ToString("N"), "k.json");
        var idp = new TestIdp();
        TokenPair login;
        await using (var before = await StartAsync(keyPath, idp))
        {
            login = await before.LoginAsync("restart-" + Guid.NewGuid().ToString("N"));
        }

        var idp2 = new TestIdp();
        await using var after = await StartAsync(keyPath, idp2);
        Assert.True(await after.IsActiveAsync(login.AccessToken));
        using var refresh = await after.RefreshAsync(login.RefreshToken);
        Assert.Equal(HttpStatusCode.OK, refresh.StatusCode);
    }
}

/// <summary>Table Storage faults, injected in the HTTP pipeline: fail closed with 503, nothing half-written.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class TableFaultTests(AzuriteFixture azurite)
{
    /// <summary>Sends to Azurite, or answers a fault instead, per request.</summary>
    private sealed class FaultTransport : HttpPipelineTransport
    {
        private readonly HttpClientTransport _inner = new();
        public volatile int FailWithStatus;
        public volatile bool Timeout;
        public int Requests;

        /// <summary>The next request this matches reaches Azurite and is applied, but its answer is lost (a 503 instead).</summary>
        public volatile Func<Request, bool>? LoseNextResponseTo;

        public override Request CreateRequest() => _inner.CreateRequest();

        public override void Process(HttpMessage message) => ProcessAsync(message).AsTask().GetAwaiter().GetResult();

        public override async ValueTask ProcessAsync(HttpMessage message)
        {
            Interlocked.Increment(ref Requests);
            if (Timeout)
            {
                throw new TaskCanceledException("injected timeout");
            }

            await _inner.ProcessAsync(message);
            if (LoseNextResponseTo is { } lose && lose(message.Request))
            {
                LoseNextResponseTo = null;
                message.Response = new InjectedResponse(503, retryAfter: "1");
            }
            else if (FailWithStatus != 0)
            {
                message.Response = new InjectedResponse(FailWithStatus, retryAfter: "1");
            }
        }
    }

    [Theory]
    [InlineData(503)]
    [InlineData(429)]
    [InlineData(500)]
    [InlineData(401)]
    [InlineData(403)]
    public async Task Throttling_and_server_errors_answer_503_and_change_nothing(int status)
    {
        var transport = new FaultTransport();
        var options = TableStorage.DefaultOptions();
        options.Transport = transport;
        options.Retry.MaxRetries = 1;
        options.Retry.Delay = TimeSpan.FromMilliseconds(10);
        var store = new TableSessionStore(new TableProvisioner(azurite.CreateClient(options)));
        var user = "fault-" + Guid.NewGuid().ToString("N");
        var session = new SessionRecord
        {
            SessionId = SessionIds.NewSessionId(user), UserId = user, Subject = user, ClientId = "web", Scope = "", Audiences = ["a"],
            CreatedAt = DateTimeOffset.UtcNow, LastActivityAt = DateTimeOffset.UtcNow, IdleExpiresAt = DateTimeOffset.UtcNow.AddHours(1),
            AbsoluteExpiresAt = DateTimeOffset.UtcNow.AddHours(2), RefreshTokenHash = "h", RefreshTokenExpiresAt = DateTimeOffset.UtcNow.AddHours(1),
            WriteId = "w", PurgeAt = DateTimeOffset.UtcNow.AddHours(3),
        };
        await store.CommitAsync(new UserSessionsChange(user, null, [session], []), default);
        var stored = (await store.GetSessionAsync(session.SessionId, default))!;

        transport.FailWithStatus = status;
        var error = await Assert.ThrowsAsync<DependencyUnavailableException>(async () => await store.ReplaceSessionAsync(stored with { RefreshTokenHash = "h2" }, default));
        Assert.Equal("storage", error.Dependency);
        Assert.Equal(TimeSpan.FromSeconds(1), error.RetryAfter);
        await Assert.ThrowsAsync<DependencyUnavailableException>(async () => await store.GetUserSessionsAsync(user, default));

        transport.FailWithStatus = 0;
        var after = (await store.GetSessionAsync(session.SessionId, default))!;
        Assert.True(after.RefreshTokenHash is "h" or "h2");
    }

    [Fact]
    public async Task Timeouts_answer_503_through_the_host_and_the_refresh_token_survives()
    {
        var transport = new FaultTransport();
        await using var host = await TokenServiceTestHost.StartAsync(new Dictionary<string, string?>
        {
            ["Storage:TableConnectionString"] = azurite.ConnectionString,
        }, configure: builder =>
        {
            var options = TableStorage.DefaultOptions();
            options.Transport = transport;
            options.Retry.MaxRetries = 1;
            options.Retry.Delay = TimeSpan.FromMilliseconds(10);
            Microsoft.Extensions.DependencyInjection.ServiceCollectionServiceExtensions.AddSingleton(builder.Services, azurite.CreateClient(options));
        });
        var login = await host.LoginAsync("timeout-" + Guid.NewGuid().ToString("N"));
        transport.Timeout = true;
        using (var refresh = await host.RefreshAsync(login.RefreshToken))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, refresh.StatusCode);
            Assert.NotNull(refresh.Headers.RetryAfter);
        }

        using (var issue = await host.ExchangeAsync(host.Idp.IdToken("timeout-2")))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, issue.StatusCode);
        }

        transport.Timeout = false;
        using var ok = await host.RefreshAsync(login.RefreshToken);
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
    }

    [Fact]
    public async Task A_retried_write_that_had_succeeded_is_recognised_by_its_write_id()
    {
        // The pipeline retries a write whose answer was lost; the retry meets its own stored write and gets
        // 409 (replay marker, login transaction: its session, user row and ID token redemption) or 412 (refresh replace). The store reports a conflict, the
        // caller re-reads, finds its write id and answers success: no false replay, no spurious contention
        // error, and no reuse on the next refresh.
        var transport = new FaultTransport();
        await using var host = await TokenServiceTestHost.StartAsync(new Dictionary<string, string?>
        {
            ["Storage:TableConnectionString"] = azurite.ConnectionString,
        }, configure: builder =>
        {
            var options = TableStorage.DefaultOptions();
            options.Transport = transport;
            options.Retry.Delay = TimeSpan.FromMilliseconds(10);
            Microsoft.Extensions.DependencyInjection.ServiceCollectionServiceExtensions.AddSingleton(builder.Services, azurite.CreateClient(options));
        });
        await host.LoginAsync("warm-" + Guid.NewGuid().ToString("N")); // creates the tables

        // A replay marker of tokenmarkers (what an exchange records there for a session lifetime in a table an earlier
        // version wrote; DPoP proofs and IdP events always): its own insert is no replay.
        var retrying = TableStorage.DefaultOptions();
        retrying.Transport = transport;
        retrying.Retry.Delay = TimeSpan.FromMilliseconds(10);
        var markers = new TableTokenMarkerStore(new TableProvisioner(azurite.CreateClient(retrying)), TimeProvider.System);
        transport.LoseNextResponseTo = r => r.Method == RequestMethod.Post && r.Uri.Path.EndsWith("/" + TableNames.TokenMarkers, StringComparison.Ordinal);
        Assert.True(await markers.TryAddAsync("lost-marker-" + Guid.NewGuid().ToString("N"), DateTimeOffset.UtcNow.AddMinutes(5), default));
        Assert.Null(transport.LoseNextResponseTo);

        transport.LoseNextResponseTo = r => r.Method == RequestMethod.Post && r.Uri.Path.EndsWith("/$batch", StringComparison.Ordinal);
        var user = "lost-" + Guid.NewGuid().ToString("N");
        var login = await host.LoginAsync(user);
        Assert.Null(transport.LoseNextResponseTo);
        Assert.True(await host.IsActiveAsync(login.AccessToken));

        transport.LoseNextResponseTo = r => r.Method == RequestMethod.Put;
        using var refresh = await host.RefreshAsync(login.RefreshToken);
        Assert.Null(transport.LoseNextResponseTo);
        Assert.Equal(HttpStatusCode.OK, refresh.StatusCode);
        var rotated = (await JsonAsync(refresh)).GetProperty("refresh_token").GetString()!;

        using var next = await host.RefreshAsync(rotated);
        Assert.Equal(HttpStatusCode.OK, next.StatusCode);
        var sessions = await new TableSessionStore(new TableProvisioner(azurite.CreateClient())).GetUserSessionsAsync(user, default);
        Assert.Single(sessions.Sessions);
    }
}
