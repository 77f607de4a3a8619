using System.Net;
using System.Text;
using System.Text.Json;
using Microsoft.IdentityModel.JsonWebTokens;
using TokenService.Tests.Infrastructure;
using TokenService.Tests.Tables;
using static TokenService.Tests.Infrastructure.TokenServiceTestHost;

namespace TokenService.Tests.SharedSignals;

/// <summary>
/// A restart through HTTP only: a stream and the SET it holds, made on one host over Table Storage (Azurite), are there
/// for a new host over the same table, which answers the same SET (same <c>jti</c>, same bytes) to the poll.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class SharedSignalsRestartTests(AzuriteFixture azurite)
{
    [Theory]
    [InlineData(HostKind.Standalone)]
    [InlineData(HostKind.Functions)]
    public async Task A_restart_loses_no_stream_and_no_held_event(HostKind kind)
    {
        var settings = new Dictionary<string, string?>(SharedSignalsHostFixture.Settings) { ["Storage:TableConnectionString"] = azurite.ConnectionString };
        var user = "ssf-restart-" + Guid.NewGuid().ToString("N");
        string streamId;
        string sid;
        KeyValuePair<string, string> held;
        await using (var before = await StartAsync(kind, settings))
        {
            using var created = await SendAsync(before, HttpMethod.Post, "/ssf/streams", """{"description":"survives"}""");
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
            streamId = (await JsonAsync(created)).GetProperty("stream_id").GetString()!;
            var login = await before.LoginAsync(user, audience: "api://orders");
            sid = new JsonWebToken(login.AccessToken).GetPayloadValue<string>("sid");
            using (var revoke = await before.PostFormAsync("/management/users/revoke", [new("user_id", user)], Basic("ops", OpsSecret)))
            {
                Assert.Equal(HttpStatusCode.OK, revoke.StatusCode);
            }

            held = Assert.Single(await PollAsync(before, streamId)); // sent once, not acknowledged
        }

        await using var after = await StartAsync(kind, settings);
        try
        {
            using var read = await SendAsync(after, HttpMethod.Get, "/ssf/streams?stream_id=" + streamId, null);
            Assert.Equal(HttpStatusCode.OK, read.StatusCode);
            Assert.Equal("survives", (await JsonAsync(read)).GetProperty("description").GetString());

            var again = Assert.Single(await PollAsync(after, streamId));
            Assert.Equal(held, again); // the same jti and the same SET (RFC 8936 §2.4: redelivered until acknowledged)
            Assert.Equal(sid, JsonDocument.Parse(new JsonWebToken(again.Value).GetPayloadValue<object>("sub_id").ToString()!).RootElement.GetProperty("session").GetProperty("id").GetString());
        }
        finally
        {
            using var deleted = await SendAsync(after, HttpMethod.Delete, "/ssf/streams?stream_id=" + streamId, null);
        }
    }

    private static async Task<List<KeyValuePair<string, string>>> PollAsync(TokenServiceTestHost host, string streamId)
    {
        using var poll = await SendAsync(host, HttpMethod.Post, "/ssf/poll/" + streamId, "{}");
        Assert.Equal(HttpStatusCode.OK, poll.StatusCode);
        return [.. (await JsonAsync(poll)).GetProperty("sets").EnumerateObject().Select(p => new KeyValuePair<string, string>(p.Name, p.Value.GetString()!))];
    }

    private static async Task<HttpResponseMessage> SendAsync(TokenServiceTestHost host, HttpMethod method, string path, string? json)
    {
        using var request = new HttpRequestMessage(method, path);
        request.Headers.Authorization = Basic("api", ApiSecret);
        if (json is not null)
        {
            request.Content = new StringContent(json, Encoding.UTF8, "application/json");
        }

        return await host.Client.SendAsync(request);
    }
}
