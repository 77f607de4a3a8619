using System.Net;
using Azure.Core;
using Azure.Core.Pipeline;
using Azure.Data.Tables;
using Microsoft.Extensions.DependencyInjection;
using TokenService.Azure.Tables;
using TokenService.Tests.Infrastructure;
using static TokenService.Tests.Infrastructure.TokenServiceTestHost;

namespace TokenService.Tests.Tables;

/// <summary>Table operations per request on the happy path: a refresh makes at most 2, a token exchange at most 3 (docs/table-storage.md, "Round trips per request").</summary>
[Collection(AzuriteCollection.Name)]
public sealed class RoundTripTests(AzuriteFixture azurite)
{
    private sealed class CountingPolicy : HttpPipelineSynchronousPolicy
    {
        public int Count;
        public override void OnSendingRequest(HttpMessage message) => Interlocked.Increment(ref Count);
    }

    [Fact]
    public async Task Refresh_costs_two_table_operations_issue_three_and_introspection_two()
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
        using var issue = await host.ExchangeAsync(host.Idp.IdToken("count-" + Guid.NewGuid().ToString("N")));
        Assert.Equal(HttpStatusCode.OK, issue.StatusCode);
        var issueOps = counter.Count - before;

        before = counter.Count;
        using var refresh = await host.RefreshAsync(warmUp.RefreshToken);
        Assert.Equal(HttpStatusCode.OK, refresh.StatusCode);
        var refreshOps = counter.Count - before;

        before = counter.Count;
        Assert.True(await host.IsActiveAsync((await JsonAsync(refresh)).GetProperty("access_token").GetString()!));
        var introspectOps = counter.Count - before;

        Assert.Equal(3, issueOps);      // replay marker insert, user partition query, one batch commit
        Assert.Equal(2, refreshOps);    // point read, conditional replace
        Assert.Equal(2, introspectOps); // deny-list point read, session point read
    }
}
