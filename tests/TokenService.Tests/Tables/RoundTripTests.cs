using System.Net;
using Azure.Core;
using Azure.Core.Pipeline;
using Azure.Data.Tables;
using Microsoft.Extensions.DependencyInjection;
using TokenService.Azure.Tables;
using TokenService.Tests.Infrastructure;
using static TokenService.Tests.Infrastructure.TokenServiceTestHost;

namespace TokenService.Tests.Tables;

/// <summary>Table operations per request on the happy path: a refresh, a token exchange and an introspection make 2 each (docs/table-storage.md, "Round trips per request").</summary>
[Collection(AzuriteCollection.Name)]
public sealed class RoundTripTests(AzuriteFixture azurite)
{
    private sealed class CountingPolicy : HttpPipelineSynchronousPolicy
    {
        public int Count;
        public readonly System.Collections.Concurrent.ConcurrentQueue<string> Queries = new();

        public override void OnSendingRequest(HttpMessage message)
        {
            Interlocked.Increment(ref Count);
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

        before = counter.Count;
        using var refresh = await host.RefreshAsync(warmUp.RefreshToken);
        Assert.Equal(HttpStatusCode.OK, refresh.StatusCode);
        var refreshOps = counter.Count - before;

        before = counter.Count;
        Assert.True(await host.IsActiveAsync((await JsonAsync(refresh)).GetProperty("access_token").GetString()!));
        var introspectOps = counter.Count - before;

        Assert.Equal(2, issueOps);      // user row point read, one batch commit (session, user row, ID token redemption)
        Assert.Equal(2, refreshOps);    // point read, conditional replace
        Assert.Equal(2, introspectOps); // deny-list point read, session point read
    }
}
