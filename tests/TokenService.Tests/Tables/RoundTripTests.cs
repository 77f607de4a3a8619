using System.Net;
using Azure.Core;
using Azure.Core.Pipeline;
using Azure.Data.Tables;
using Microsoft.Extensions.DependencyInjection;
using TokenService.Azure.Tables;
using TokenService.Tests.Infrastructure;
using static TokenService.Tests.Infrastructure.TokenServiceTestHost;

namespace TokenService.Tests.Tables;

/// <summary>
/// Table operations per request on the happy path (docs/table-storage.md, "Round trips per request"): a token exchange
/// and an introspection make 2 each, a refresh 1 where this instance wrote the session last and 2 elsewhere.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class RoundTripTests(AzuriteFixture azurite)
{
    private sealed class CountingPolicy : HttpPipelineSynchronousPolicy
    {
        public int Count;
        public readonly System.Collections.Concurrent.ConcurrentQueue<string> Queries = new();
        public readonly System.Collections.Concurrent.ConcurrentQueue<string> Sent = new();

        public override void OnSendingRequest(HttpMessage message)
        {
            Interlocked.Increment(ref Count);
            Sent.Enqueue(message.Request.Method + (message.Request.Headers.Contains(HttpHeader.Names.IfMatch) ? " If-Match" : string.Empty));
            if (message.Request.Method == RequestMethod.Get && message.Request.Uri.Query.Contains("filter=", StringComparison.Ordinal))
            {
                Queries.Enqueue(message.Request.Uri.ToString());
            }
        }
    }

    [Fact]
    public async Task Refresh_exchange_and_introspection_cost_two_table_operations_each()
    {
        var counter = new CountingPolicy();
        await using var host = await TokenServiceTestHost.StartAsync(new Dictionary<string, string?>
        {
            ["Storage:TableConnectionString"] = azurite.ConnectionString,
        }, configure: builder =>
        {
            // Per retry: every request that reaches the service counts, a retried one too.
            var options = TableStorage.DefaultOptions();
            options.AddPolicy(counter, HttpPipelinePosition.PerRetry);
            builder.Services.AddSingleton(azurite.CreateClient(options));
        });

        var warmUp = await host.LoginAsync("warm-" + Guid.NewGuid().ToString("N")); // creates the tables once

        var before = counter.Count;
        var queriesBefore = counter.Queries.Count;
        using var issue = await host.ExchangeAsync(host.Idp.IdToken("count-" + Guid.NewGuid().ToString("N")));
        Assert.Equal(HttpStatusCode.OK, issue.StatusCode);
        var issueOps = counter.Count - before;
        Assert.Equal(queriesBefore, counter.Queries.Count); // the user's row by point, not the partition by query

        // A returning user with room under the limit: the same two, no query either.
        var returning = "again-" + Guid.NewGuid().ToString("N");
        using (var first = await host.ExchangeAsync(host.Idp.IdToken(returning)))
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        }

        before = counter.Count;
        using (var second = await host.ExchangeAsync(host.Idp.IdToken(returning)))
        {
            Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        }

        Assert.Equal(2, counter.Count - before);
        Assert.Equal(queriesBefore, counter.Queries.Count);

        // The host wrote the session last (the sign-in's commit gave its ETag back): the rotation is written at once.
        before = counter.Count;
        using var refresh = await host.RefreshAsync(warmUp.RefreshToken);
        Assert.Equal(HttpStatusCode.OK, refresh.StatusCode);
        var refreshOps = counter.Count - before;

        before = counter.Count;
        Assert.True(await host.IsActiveAsync((await JsonAsync(refresh)).GetProperty("access_token").GetString()!));
        var introspectOps = counter.Count - before;

        Assert.Equal(2, issueOps);      // user row point read, one batch commit (session, user row, ID token redemption)
        Assert.Equal(1, refreshOps);    // conditional replace against the state this host stored (SessionStateCache)
        Assert.Equal(2, introspectOps); // deny-list point read, session point read
    }

    [Fact]
    public async Task A_refresh_reads_the_session_where_another_instance_wrote_it_last_and_a_session_ended_there_is_refused_here()
    {
        var counter = new CountingPolicy();
        var settings = new Dictionary<string, string?> { ["Storage:TableConnectionString"] = azurite.ConnectionString };
        await using var here = await TokenServiceTestHost.StartAsync(settings, configure: builder =>
        {
            var options = TableStorage.DefaultOptions();
            options.AddPolicy(counter, HttpPipelinePosition.PerRetry);
            builder.Services.AddSingleton(azurite.CreateClient(options));
        });
        await using var there = await TokenServiceTestHost.StartAsync(settings);

        var opened = await here.LoginAsync("two-" + Guid.NewGuid().ToString("N"));
        string rotatedThere;
        using (var refreshedThere = await there.RefreshAsync(opened.RefreshToken))
        {
            Assert.Equal(HttpStatusCode.OK, refreshedThere.StatusCode);
            rotatedThere = (await JsonAsync(refreshedThere)).GetProperty("refresh_token").GetString()!;
        }

        // Here the cached state names the token the other instance replaced: the session is read, then written.
        var before = counter.Count;
        string rotatedHere;
        using (var refreshedHere = await here.RefreshAsync(rotatedThere))
        {
            Assert.Equal(HttpStatusCode.OK, refreshedHere.StatusCode);
            rotatedHere = (await JsonAsync(refreshedHere)).GetProperty("refresh_token").GetString()!;
        }

        Assert.Equal(2, counter.Count - before);

        // Ended there while this host holds it live with the current token: the write's If-Match fails, the read decides.
        using (var revoked = await there.PostFormAsync("/oauth2/revoke", [new("token", rotatedHere)], Basic("web", WebSecret)))
        {
            Assert.Equal(HttpStatusCode.OK, revoked.StatusCode);
        }

        counter.Sent.Clear();
        using var refused = await here.RefreshAsync(rotatedHere);
        await AssertOAuthErrorAsync(refused, "invalid_grant");
        Assert.Equal(["PUT If-Match", "GET"], counter.Sent); // the conditional replace that failed, the read that decides
    }
}
