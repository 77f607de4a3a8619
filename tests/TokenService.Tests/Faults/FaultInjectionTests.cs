using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using TokenService.Configuration;
using TokenService.Keys;
using TokenService.Sessions;
using TokenService.Tests.Infrastructure;
using static TokenService.Tests.Infrastructure.TokenServiceTestHost;

namespace TokenService.Tests.Faults;

/// <summary>Faults fail closed: 503 with Retry-After, nothing changed, and the client can retry afterwards.</summary>
public sealed class FaultInjectionTests : IAsyncLifetime
{
    private readonly SwitchableSigner _signer = new(new LocalSigningKeyService(
        Options.Create(new KeysOptions { DevelopmentKeyPath = Path.Combine(Path.GetTempPath(), "fault-keys-" + Guid.NewGuid().ToString("N") + ".json") }),
        TimeProvider.System, NullLogger<LocalSigningKeyService>.Instance));

    private readonly SwitchableStore _store = new(new InMemorySessionStore());
    private TokenServiceTestHost _host = null!;

    public async Task InitializeAsync() => _host = await TokenServiceTestHost.StartAsync(configure: builder =>
    {
        builder.Services.AddSingleton<ISigningKeyService>(_signer);
        builder.Services.AddSingleton<ISessionStore>(_store);
    });

    public async Task DisposeAsync() => await _host.DisposeAsync();

    private static void AssertUnavailable(HttpResponseMessage response)
    {
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.True(response.Headers.RetryAfter is not null, "Retry-After is missing");
    }

    [Fact]
    public async Task Signing_outage_during_refresh_answers_503_and_the_same_refresh_token_works_afterwards()
    {
        var login = await _host.LoginAsync("kv-down");
        _signer.Failing = true;
        using (var refresh = await _host.RefreshAsync(login.RefreshToken))
        {
            AssertUnavailable(refresh);
            await AssertOAuthErrorAsync(refresh, "temporarily_unavailable", HttpStatusCode.ServiceUnavailable);
        }

        // Validation keeps working from cached keys while signing is down.
        Assert.True(await _host.IsActiveAsync(login.AccessToken));
        using (var jwks = await _host.Client.GetAsync("/.well-known/jwks.json"))
        {
            Assert.Equal(HttpStatusCode.OK, jwks.StatusCode);
        }

        _signer.Failing = false;
        using var retry = await _host.RefreshAsync(login.RefreshToken);
        Assert.Equal(HttpStatusCode.OK, retry.StatusCode);
    }

    [Fact]
    public async Task Signing_outage_during_issue_opens_no_session_and_the_id_token_can_be_retried()
    {
        var user = "kv-issue-" + Guid.NewGuid().ToString("N");
        var idToken = _host.Idp.IdToken(user);
        _signer.Failing = true;
        using (var issue = await _host.ExchangeAsync(idToken))
        {
            AssertUnavailable(issue);
        }

        _signer.Failing = false;
        Assert.Empty((await _store.GetUserSessionsAsync(user, default)).Sessions);
        using var retry = await _host.ExchangeAsync(idToken);
        Assert.Equal(HttpStatusCode.OK, retry.StatusCode);
    }

    [Fact]
    public async Task Store_outage_answers_503_on_issue_refresh_revoke_and_introspect_and_changes_nothing()
    {
        var login = await _host.LoginAsync("store-down");
        _store.Failing = true;
        using (var issue = await _host.ExchangeAsync(_host.Idp.IdToken("store-down-2")))
        {
            AssertUnavailable(issue);
        }

        using (var refresh = await _host.RefreshAsync(login.RefreshToken))
        {
            AssertUnavailable(refresh);
        }

        using (var revoke = await _host.PostFormAsync("/oauth2/revoke", [new("token", login.RefreshToken)], Basic("web", WebSecret)))
        {
            AssertUnavailable(revoke);
        }

        using (var introspect = await _host.IntrospectAsync(login.AccessToken))
        {
            AssertUnavailable(introspect);
        }

        using (var health = await _host.Client.GetAsync("/healthz"))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, health.StatusCode);
        }

        _store.Failing = false;
        Assert.True(await _host.IsActiveAsync(login.AccessToken));
        using var after = await _host.RefreshAsync(login.RefreshToken);
        Assert.Equal(HttpStatusCode.OK, after.StatusCode);
    }

    [Fact]
    public async Task A_conflict_reported_after_a_successful_rotation_is_not_mistaken_for_reuse()
    {
        var login = await _host.LoginAsync("retried-write");
        _store.ReportConflictAfterNextReplace = true;
        using var refresh = await _host.RefreshAsync(login.RefreshToken);
        Assert.Equal(HttpStatusCode.OK, refresh.StatusCode);
        var rotated = (await JsonAsync(refresh)).GetProperty("refresh_token").GetString()!;
        using var next = await _host.RefreshAsync(rotated);
        Assert.Equal(HttpStatusCode.OK, next.StatusCode);
    }

    private sealed class SwitchableSigner(ISigningKeyService inner) : ISigningKeyService
    {
        public volatile bool Failing;

        public ValueTask<SigningKeySet> GetKeySetAsync(CancellationToken cancellationToken) => inner.GetKeySetAsync(cancellationToken);

        public ValueTask<byte[]> SignAsync(SigningKey key, ReadOnlyMemory<byte> signingInput, CancellationToken cancellationToken) =>
            Failing ? throw new DependencyUnavailableException("keyvault", "injected outage", TimeSpan.FromSeconds(2)) : inner.SignAsync(key, signingInput, cancellationToken);

        public ValueTask<SignedInput> SignWithActiveKeyAsync(Func<SigningKey, ReadOnlyMemory<byte>> buildSigningInput, CancellationToken cancellationToken) =>
            ActiveKeySigning.SignAsync(this, buildSigningInput, cancellationToken);

        public Task<KeyRotationResult> RunRotationCheckAsync(CancellationToken cancellationToken) => inner.RunRotationCheckAsync(cancellationToken);

        public Task<KeyRotationResult> RotateNowAsync(bool immediate, CancellationToken cancellationToken) => inner.RotateNowAsync(immediate, cancellationToken);

        public Task<KeyRotationResult> RevokeAsync(string kid, CancellationToken cancellationToken) => inner.RevokeAsync(kid, cancellationToken);
    }

    private sealed class SwitchableStore(ISessionStore inner) : ISessionStore
    {
        public volatile bool Failing;
        public volatile bool ReportConflictAfterNextReplace;

        private T Guard<T>(T value) => Failing ? throw new DependencyUnavailableException("storage", "injected outage") : value;

        public ValueTask<SessionRecord?> GetSessionAsync(string sessionId, CancellationToken cancellationToken) =>
            Guard(inner.GetSessionAsync(sessionId, cancellationToken));

        public ValueTask<UserSessions> GetUserSessionsAsync(string userId, CancellationToken cancellationToken) =>
            Guard(inner.GetUserSessionsAsync(userId, cancellationToken));

        public async ValueTask<StoreWriteResult> ReplaceSessionAsync(SessionRecord updated, CancellationToken cancellationToken)
        {
            var result = await Guard(inner.ReplaceSessionAsync(updated, cancellationToken));

            // Like a retried request whose first attempt succeeded: the write is stored, the answer is 412.
            if (result.Succeeded && ReportConflictAfterNextReplace)
            {
                ReportConflictAfterNextReplace = false;
                return StoreWriteResult.Conflict;
            }

            return result;
        }

        public ValueTask<StoreWriteStatus> CommitAsync(UserSessionsChange change, CancellationToken cancellationToken) =>
            Guard(inner.CommitAsync(change, cancellationToken));
    }
}
