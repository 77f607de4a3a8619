using System.Net;
using Azure;
using Azure.Core;
using Azure.Core.Pipeline;
using Microsoft.Extensions.DependencyInjection;
using TokenService.Azure.Tables;
using TokenService.Azure.Tables.Stores;
using TokenService.Dpop;
using TokenService.Tests.Infrastructure;
using TokenService.Tests.Tables;
using static TokenService.Tests.Dpop.DpopHostFixture;
using static TokenService.Tests.Infrastructure.TokenServiceTestHost;

namespace TokenService.Tests.Dpop;

/// <summary>
/// The jti replay cache in the session store's backend (RFC 9449 §11.1): shared by every instance on one Table account,
/// insert-if-absent with a write id so that a retried insert is not mistaken for a replay, and failing closed.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class DpopReplayStorageTests(AzuriteFixture azurite)
{
    [Fact]
    public async Task A_proof_replayed_to_a_second_instance_on_the_same_storage_is_refused()
    {
        var settings = new Dictionary<string, string?> { ["Storage:TableConnectionString"] = azurite.ConnectionString };
        await using var first = await StartAsync(HostKind.Standalone, settings);
        await using var second = await StartAsync(HostKind.Functions, settings);
        using var key = DpopKey.Es256();

        var login = await PostAsync(first, Exchange(first.Idp.IdToken("dpop-az-" + Guid.NewGuid().ToString("N"))), key.Proof("POST", TokenUri, DateTimeOffset.UtcNow));
        Assert.Equal("DPoP", login.GetProperty("token_type").GetString());

        var proof = key.Proof("POST", TokenUri, DateTimeOffset.UtcNow);
        var refreshed = await PostAsync(first, Refresh(login.GetProperty("refresh_token").GetString()!), proof);
        var refreshToken = refreshed.GetProperty("refresh_token").GetString()!;

        using (var replayed = await SendAsync(second, Refresh(refreshToken), proof))
        {
            await AssertOAuthErrorAsync(replayed, "invalid_dpop_proof");
        }

        // The second instance shares the session too, and the refused replay changed nothing there.
        var fresh = await PostAsync(second, Refresh(refreshToken), key.Proof("POST", TokenUri, DateTimeOffset.UtcNow));
        Assert.Equal("DPoP", fresh.GetProperty("token_type").GetString());
    }

    [Fact]
    public async Task The_table_cache_records_each_key_once_and_a_retried_insert_is_not_a_replay()
    {
        var transport = new LosingTransport();
        var options = TableStorage.DefaultOptions();
        options.Transport = transport;
        options.Retry.Delay = TimeSpan.FromMilliseconds(10);
        var cache = new TableDpopReplayCache(new TableTokenMarkerStore(new TableProvisioner(azurite.CreateClient(options)), TimeProvider.System));
        var expires = DateTimeOffset.UtcNow.AddMinutes(1);
        var key = "jkt:" + Guid.NewGuid().ToString("N");

        Assert.True(await cache.TryAddAsync(key, expires, default));
        Assert.False(await cache.TryAddAsync(key, expires, default));
        Assert.True(await cache.TryAddAsync(key + "-other", expires, default));

        // The insert reaches the table but its answer is lost; the SDK's retry meets the stored row (409).
        var retried = "jkt:" + Guid.NewGuid().ToString("N");
        transport.LoseNextInsert = true;
        Assert.True(await cache.TryAddAsync(retried, expires, default));
        Assert.False(transport.LoseNextInsert);
        Assert.False(await cache.TryAddAsync(retried, expires, default));
    }

    [Fact]
    public async Task An_unreachable_table_fails_closed_as_dependency_unavailable()
    {
        var options = TableStorage.DefaultOptions();
        options.Transport = new LosingTransport { AlwaysFail = true };
        options.Retry.MaxRetries = 0;
        var cache = new TableDpopReplayCache(new TableTokenMarkerStore(new TableProvisioner(azurite.CreateClient(options)), TimeProvider.System));
        await Assert.ThrowsAsync<DependencyUnavailableException>(async () => await cache.TryAddAsync("k", DateTimeOffset.UtcNow.AddMinutes(1), default));
    }

    private static IEnumerable<KeyValuePair<string, string>> Exchange(string idToken) =>
    [
        new("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
        new("subject_token", idToken),
        new("subject_token_type", "urn:ietf:params:oauth:token-type:id_token"),
    ];

    private static IEnumerable<KeyValuePair<string, string>> Refresh(string refreshToken) =>
        [new("grant_type", "refresh_token"), new("refresh_token", refreshToken)];

    private static Task<HttpResponseMessage> SendAsync(TokenServiceTestHost host, IEnumerable<KeyValuePair<string, string>> form, string proof)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/oauth2/token") { Content = new FormUrlEncodedContent(form) };
        request.Headers.Authorization = Basic("web", WebSecret);
        request.Headers.TryAddWithoutValidation("DPoP", proof);
        return host.Client.SendAsync(request);
    }

    private static async Task<System.Text.Json.JsonElement> PostAsync(TokenServiceTestHost host, IEnumerable<KeyValuePair<string, string>> form, string proof)
    {
        using var response = await SendAsync(host, form, proof);
        var json = await JsonAsync(response);
        Assert.True(response.StatusCode == HttpStatusCode.OK, json.ToString());
        return json;
    }

    /// <summary>Forwards to Azurite; can lose the answer of the next insert (a 503 after it was applied) or fail every request.</summary>
    private sealed class LosingTransport : HttpPipelineTransport
    {
        private readonly HttpClientTransport _inner = new();

        public volatile bool LoseNextInsert;
        public volatile bool AlwaysFail;

        public override Request CreateRequest() => _inner.CreateRequest();

        public override void Process(HttpMessage message) => ProcessAsync(message).AsTask().GetAwaiter().GetResult();

        public override async ValueTask ProcessAsync(HttpMessage message)
        {
            if (AlwaysFail)
            {
                message.Response = new InjectedResponse(503);
                return;
            }

            await _inner.ProcessAsync(message);
            if (LoseNextInsert && message.Request.Method == RequestMethod.Post && message.Request.Uri.Path.EndsWith("/" + TableNames.TokenMarkers, StringComparison.Ordinal))
            {
                LoseNextInsert = false;
                message.Response = new InjectedResponse(503);
            }
        }
    }

}

/// <summary>A replay cache outage at the token endpoint: 503 with Retry-After, and the refresh token survives.</summary>
public sealed class DpopReplayOutageTests
{
    [Theory]
    [InlineData(HostKind.Standalone)]
    [InlineData(HostKind.Functions)]
    public async Task A_replay_cache_outage_answers_503_and_changes_nothing(HostKind kind)
    {
        var cache = new SwitchableReplayCache();
        await using var host = await StartAsync(kind, services: s => s.AddSingleton<IDpopReplayCache>(cache));
        using var key = DpopKey.Es256();

        using var login = await Send(host, [
            new("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
            new("subject_token", host.Idp.IdToken("dpop-outage-" + Guid.NewGuid().ToString("N"))),
            new("subject_token_type", "urn:ietf:params:oauth:token-type:id_token"),
        ], key.Proof("POST", TokenUri, DateTimeOffset.UtcNow));
        var refreshToken = (await JsonAsync(login)).GetProperty("refresh_token").GetString()!;

        cache.Down = true;
        using (var down = await Send(host, [new("grant_type", "refresh_token"), new("refresh_token", refreshToken)], key.Proof("POST", TokenUri, DateTimeOffset.UtcNow)))
        {
            await AssertOAuthErrorAsync(down, "temporarily_unavailable", HttpStatusCode.ServiceUnavailable);
            Assert.NotNull(down.Headers.RetryAfter);
        }

        cache.Down = false;
        using var up = await Send(host, [new("grant_type", "refresh_token"), new("refresh_token", refreshToken)], key.Proof("POST", TokenUri, DateTimeOffset.UtcNow));
        Assert.Equal(HttpStatusCode.OK, up.StatusCode);
    }

    private static Task<HttpResponseMessage> Send(TokenServiceTestHost host, KeyValuePair<string, string>[] form, string proof)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/oauth2/token") { Content = new FormUrlEncodedContent(form) };
        request.Headers.Authorization = Basic("web", WebSecret);
        request.Headers.TryAddWithoutValidation("DPoP", proof);
        return host.Client.SendAsync(request);
    }

    private sealed class SwitchableReplayCache : IDpopReplayCache
    {
        private readonly InMemoryDpopReplayCache _inner = new(TimeProvider.System);

        public volatile bool Down;

        public ValueTask<bool> TryAddAsync(string key, DateTimeOffset expiresAt, CancellationToken cancellationToken) =>
            Down ? throw new DependencyUnavailableException("storage", "injected outage", TimeSpan.FromSeconds(2)) : _inner.TryAddAsync(key, expiresAt, cancellationToken);
    }
}
