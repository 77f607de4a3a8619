using System.Net;
using Microsoft.IdentityModel.JsonWebTokens;
using TokenService.Tests.Infrastructure;
using static TokenService.Tests.Infrastructure.TokenServiceTestHost;

namespace TokenService.Tests.Keys;

/// <summary>
/// Key compromise response on both hosts (<c>/management/keys/*</c>, admin client): rotate now, ahead of use or at
/// once; revoke a key, which leaves the JWKS at once, whose tokens are refused by our own validation, while the
/// sessions survive and refresh onto the new key.
/// </summary>
public sealed class KeyManagementTests
{
    private static Task<HttpResponseMessage> PostAsync(TokenServiceTestHost host, string path, string clientId = "ops", string secret = OpsSecret)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path);
        request.Headers.Authorization = Basic(clientId, secret);
        return host.Client.SendAsync(request);
    }

    private static async Task<List<string>> JwksKidsAsync(TokenServiceTestHost host)
    {
        using var response = await host.Client.GetAsync("/.well-known/jwks.json");
        return (await JsonAsync(response)).GetProperty("keys").EnumerateArray().Select(k => k.GetProperty("kid").GetString()!).ToList();
    }

    private static string Kid(string jwt) => new JsonWebToken(jwt).Kid;

    [Theory]
    [InlineData(HostKind.Standalone)]
    [InlineData(HostKind.Functions)]
    public async Task Rotate_publishes_the_next_key_ahead_of_use_and_is_idempotent(HostKind kind)
    {
        await using var host = await StartAsync(kind);
        var before = await host.LoginAsync("rotate");
        using (var rotate = await PostAsync(host, "/management/keys/rotate"))
        {
            var json = await JsonAsync(rotate);
            Assert.True(rotate.StatusCode == HttpStatusCode.OK, json.ToString());
            Assert.True(json.GetProperty("changed").GetBoolean());
            Assert.Equal(Kid(before.AccessToken), json.GetProperty("active_kid").GetString());
        }

        var kids = await JwksKidsAsync(host);
        Assert.Equal(2, kids.Count); // the pending key is published before it signs
        var after = await host.LoginAsync("rotate");
        Assert.Equal(Kid(before.AccessToken), Kid(after.AccessToken));

        using (var again = await PostAsync(host, "/management/keys/rotate"))
        {
            Assert.Equal(HttpStatusCode.OK, again.StatusCode);
            Assert.False((await JsonAsync(again)).GetProperty("changed").GetBoolean());
        }

        Assert.Equal(kids.Order(), (await JwksKidsAsync(host)).Order());
    }

    [Theory]
    [InlineData(HostKind.Standalone)]
    [InlineData(HostKind.Functions)]
    public async Task Rotate_immediately_signs_with_a_new_key_at_once(HostKind kind)
    {
        await using var host = await StartAsync(kind);
        var before = await host.LoginAsync("rotate-now");
        using var rotate = await PostAsync(host, "/management/keys/rotate?immediate=true");
        Assert.Equal(HttpStatusCode.OK, rotate.StatusCode);
        var after = await host.LoginAsync("rotate-now");
        Assert.NotEqual(Kid(before.AccessToken), Kid(after.AccessToken));
        Assert.Contains(Kid(before.AccessToken), await JwksKidsAsync(host)); // retired, still verifying its tokens
        Assert.True(await host.IsActiveAsync(before.AccessToken));
    }

    [Theory]
    [InlineData(HostKind.Standalone)]
    [InlineData(HostKind.Functions)]
    public async Task Immediate_rotations_beyond_the_key_cap_are_409_with_what_to_do_and_revoking_a_retired_key_makes_room(HostKind kind)
    {
        await using var host = await StartAsync(kind, new Dictionary<string, string?> { ["Keys:MaxPublishedKeys"] = "4" });

        // Immediate rotations until the cap: each adds a published key and keeps a place for the scheduled rotation.
        HttpResponseMessage refused = null!;
        for (var i = 0; i < 5; i++)
        {
            var rotate = await PostAsync(host, "/management/keys/rotate?immediate=true");
            if (rotate.StatusCode != HttpStatusCode.OK)
            {
                refused = rotate;
                break;
            }

            rotate.Dispose();
        }

        var kids = await JwksKidsAsync(host);
        Assert.InRange(kids.Count, 2, 3);
        string retired;
        using (refused)
        {
            Assert.NotNull(refused);
            var problem = await JsonAsync(refused);
            Assert.True(refused.StatusCode == HttpStatusCode.Conflict, problem.ToString());
            Assert.Equal("application/problem+json", refused.Content.Headers.ContentType?.MediaType);
            Assert.Equal(409, problem.GetProperty("status").GetInt32());
            var detail = problem.GetProperty("detail").GetString()!;
            Assert.Contains("Keys:MaxPublishedKeys (4)", detail, StringComparison.Ordinal);
            Assert.Contains("Revoke a retired key", detail, StringComparison.Ordinal);
            Assert.Contains("wait until", detail, StringComparison.Ordinal);
            Assert.Equal(4, problem.GetProperty("max_published_keys").GetInt32());
            var retiredKids = problem.GetProperty("retired_kids").EnumerateArray().Select(k => k.GetString()!).ToList();
            Assert.NotEmpty(retiredKids);
            Assert.All(retiredKids, k => Assert.Contains(k, kids));
            retired = retiredKids[0];
        }

        Assert.Equal(kids.Order(), (await JwksKidsAsync(host)).Order()); // nothing created

        // Revocation is never refused; it makes room for the rotation.
        using (var revoke = await PostAsync(host, $"/management/keys/{retired}/revoke"))
        {
            Assert.Equal(HttpStatusCode.OK, revoke.StatusCode);
        }

        Assert.DoesNotContain(retired, await JwksKidsAsync(host));
        using (var rotate = await PostAsync(host, "/management/keys/rotate?immediate=true"))
        {
            Assert.Equal(HttpStatusCode.OK, rotate.StatusCode);
        }

        Assert.True((await JwksKidsAsync(host)).Count <= 4);
    }

    [Theory]
    [InlineData(HostKind.Standalone)]
    [InlineData(HostKind.Functions)]
    public async Task Revoking_the_signing_key_removes_it_refuses_its_tokens_and_sessions_refresh_onto_a_new_key(HostKind kind)
    {
        await using var host = await StartAsync(kind);
        var login = await host.LoginAsync("compromised");
        var sessionsToken = (await host.LoginAsync("compromised", audience: Issuer)).AccessToken; // aud = issuer, for /sessions
        var revokedKid = Kid(login.AccessToken);
        Assert.Equal(revokedKid, Kid(sessionsToken));
        Assert.True(await host.IsActiveAsync(login.AccessToken));

        using (var revoke = await PostAsync(host, $"/management/keys/{revokedKid}/revoke"))
        {
            var json = await JsonAsync(revoke);
            Assert.True(revoke.StatusCode == HttpStatusCode.OK, json.ToString());
            Assert.NotEqual(revokedKid, json.GetProperty("active_kid").GetString());
        }

        Assert.DoesNotContain(revokedKid, await JwksKidsAsync(host));
        Assert.False(await host.IsActiveAsync(login.AccessToken));
        using (var sessions = new HttpRequestMessage(HttpMethod.Get, "/sessions"))
        {
            sessions.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", sessionsToken);
            using var refused = await host.Client.SendAsync(sessions);
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        }

        // The session survives: its refresh token gets a token signed by the new key.
        using var refresh = await host.RefreshAsync(login.RefreshToken);
        var refreshed = await JsonAsync(refresh);
        Assert.True(refresh.StatusCode == HttpStatusCode.OK, refreshed.ToString());
        var newToken = refreshed.GetProperty("access_token").GetString()!;
        Assert.NotEqual(revokedKid, Kid(newToken));
        Assert.True(await host.IsActiveAsync(newToken));

        // Revoking it again changes nothing.
        using var again = await PostAsync(host, $"/management/keys/{revokedKid}/revoke");
        Assert.Equal(HttpStatusCode.NotFound, again.StatusCode);
    }

    [Fact]
    public async Task Two_concurrent_revokes_of_one_key_leave_one_consistent_state()
    {
        await using var host = await StartAsync(HostKind.Standalone);
        var login = await host.LoginAsync("race");
        var kid = Kid(login.AccessToken);
        var responses = await Task.WhenAll(PostAsync(host, $"/management/keys/{kid}/revoke"), PostAsync(host, $"/management/keys/{kid}/revoke"));
        var statuses = responses.Select(r => (int)r.StatusCode).Order().ToArray();
        Assert.True(statuses.SequenceEqual([200, 404]), string.Join(",", statuses) + " " + string.Join(" | ", await Task.WhenAll(responses.Select(r => r.Content.ReadAsStringAsync()))));
        var kids = await JwksKidsAsync(host);
        Assert.Single(kids); // exactly one new signing key, the revoked one gone
        Assert.DoesNotContain(kid, kids);
        var next = await host.LoginAsync("race");
        Assert.Equal(kids[0], Kid(next.AccessToken));
        foreach (var response in responses)
        {
            response.Dispose();
        }
    }

    [Theory]
    [InlineData("/management/keys/rotate")]
    [InlineData("/management/keys/abc/revoke")]
    public async Task Only_the_admin_client_may_manage_keys(string path)
    {
        await using var host = await StartAsync(HostKind.Standalone);
        var kids = await JwksKidsAsync(host);
        using var refused = await PostAsync(host, path, "web", WebSecret);
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        Assert.Equal("application/problem+json", refused.Content.Headers.ContentType?.MediaType);
        Assert.Equal(kids, await JwksKidsAsync(host));
    }
}
