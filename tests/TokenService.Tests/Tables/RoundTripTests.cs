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
/// makes 2, or 1 for a returning user this instance signed in last; an introspection 2; a refresh 1 where this instance
/// wrote the session last and 2 elsewhere.
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
    public async Task Exchange_refresh_and_introspection_cost_the_table_operations_their_paths_need()
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

        // A returning user with room under the limit, whom this host signed in last: the commit alone, against the
        // version that host's last commit for the user gave back (SessionStateCache).
        var returning = "again-" + Guid.NewGuid().ToString("N");
        using (var first = await host.ExchangeAsync(host.Idp.IdToken(returning)))
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        }

        counter.Sent.Clear();
        using (var second = await host.ExchangeAsync(host.Idp.IdToken(returning)))
        {
            Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        }

        Assert.Equal(["POST"], counter.Sent);
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

    [Fact]
    public async Task A_returning_users_sign_in_after_one_on_another_instance_fails_its_commit_here_and_reads_the_users_row()
    {
        var hereCounter = new CountingPolicy();
        var thereCounter = new CountingPolicy();
        await using var here = await StartCountedAsync(hereCounter);
        await using var there = await StartCountedAsync(thereCounter);
        await ExchangeOkAsync(there, "warm-" + Guid.NewGuid().ToString("N")); // its tables, once
        var user = "roam-" + Guid.NewGuid().ToString("N");
        await ExchangeOkAsync(here, user);

        // There, where the user was never signed in: the user row by point, then the commit.
        thereCounter.Sent.Clear();
        await ExchangeOkAsync(there, user);
        Assert.Equal(["GET", "POST"], thereCounter.Sent);

        // Here the held index is stale by now: its commit fails (412 inside the batch), then the row by point, the commit.
        hereCounter.Sent.Clear();
        var queriesBefore = hereCounter.Queries.Count;
        await ExchangeOkAsync(here, user);
        Assert.Equal(["POST", "GET", "POST"], hereCounter.Sent);
        Assert.Equal(queriesBefore, hereCounter.Queries.Count);

        // The host's only commit on a held index so far failed: below the break-even, the next sign-in reads the row
        // first (held indexes come back once probes land, SessionStateCacheTests).
        hereCounter.Sent.Clear();
        await ExchangeOkAsync(here, user);
        Assert.Equal(["GET", "POST"], hereCounter.Sent);
    }

    private Task<TokenServiceTestHost> StartCountedAsync(CountingPolicy counter) =>
        TokenServiceTestHost.StartAsync(new Dictionary<string, string?>
        {
            ["Storage:TableConnectionString"] = azurite.ConnectionString,
            ["TokenService:MaxSessionsPerUser"] = "10", // room for every sign-in here: none has to read the partition
        }, configure: builder =>
        {
            var options = TableStorage.DefaultOptions();
            options.AddPolicy(counter, HttpPipelinePosition.PerRetry);
            builder.Services.AddSingleton(azurite.CreateClient(options));
        });

    private static async Task ExchangeOkAsync(TokenServiceTestHost host, string user)
    {
        using var exchanged = await host.ExchangeAsync(host.Idp.IdToken(user));
        Assert.Equal(HttpStatusCode.OK, exchanged.StatusCode);
    }
}
