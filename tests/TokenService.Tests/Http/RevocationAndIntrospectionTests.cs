using System.Net;
using System.Text.Json.Nodes;
using TokenService.Tests.Infrastructure;
using static TokenService.Tests.Infrastructure.TokenServiceTestHost;
using Microsoft.Extensions.Time.Testing;

namespace TokenService.Tests.Http;

public sealed class RevocationAndIntrospectionTests(HostFixture fixture) : RevocationAndIntrospectionTests<HostFixture>(fixture);

/// <summary>The same tests against the Functions app (its HTTP functions invoked in-process).</summary>
public sealed class RevocationAndIntrospectionTestsOnFunctions(FunctionsHostFixture fixture) : RevocationAndIntrospectionTests<FunctionsHostFixture>(fixture);

/// <summary>The same tests against the published app under a real Functions host (<see cref="RealFunctionsHostPool"/>).</summary>
[RealFunctionsHostTier]
[Collection(RealFunctionsHostCollection.Name)]
public sealed class RevocationAndIntrospectionTestsOnRealHost(RealFunctionsHostFixture fixture) : RevocationAndIntrospectionTests<RealFunctionsHostFixture>(fixture);

public abstract class RevocationAndIntrospectionTests<TFixture>(TFixture fixture) : IClassFixture<TFixture>
    where TFixture : HostFixture
{
    private TokenServiceTestHost Host => fixture.Host;

    private Task<HttpResponseMessage> RevokeAsync(string token, string? hint = null, string clientId = "web", string secret = WebSecret)
    {
        var form = new List<KeyValuePair<string, string>> { new("token", token) };
        if (hint is not null)
        {
            form.Add(new("token_type_hint", hint));
        }

        return Host.PostFormAsync("/oauth2/revoke", form, Basic(clientId, secret));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("refresh_token")]
    [InlineData("access_token")]
    [InlineData("something_else")]
    public async Task Revoking_a_refresh_token_ends_its_session_whatever_the_hint(string? hint)
    {
        var login = await Host.LoginAsync("ray-" + hint);
        using var revoke = await RevokeAsync(login.RefreshToken, hint);
        Assert.Equal(HttpStatusCode.OK, revoke.StatusCode);
        using var refresh = await Host.RefreshAsync(login.RefreshToken);
        await AssertOAuthErrorAsync(refresh, "invalid_grant");
        Assert.False(await Host.IsActiveAsync(login.AccessToken));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("refresh_token")]
    public async Task Revoking_an_access_token_denies_its_jti_but_keeps_the_session(string? hint)
    {
        var login = await Host.LoginAsync("ada-" + hint);
        Assert.True(await Host.IsActiveAsync(login.AccessToken));
        using var revoke = await RevokeAsync(login.AccessToken, hint);
        Assert.Equal(HttpStatusCode.OK, revoke.StatusCode);
        Assert.False(await Host.IsActiveAsync(login.AccessToken));
        using var refresh = await Host.RefreshAsync(login.RefreshToken);
        Assert.Equal(HttpStatusCode.OK, refresh.StatusCode);
        Assert.True(await Host.IsActiveAsync((await JsonAsync(refresh)).GetProperty("access_token").GetString()!));
    }

    [Theory]
    [InlineData("unknown-token")]
    [InlineData("a.b.c")]
    [InlineData("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")]
    public async Task Unknown_tokens_answer_200(string token)
    {
        using var response = await RevokeAsync(token);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task A_client_cannot_revoke_another_clients_tokens()
    {
        var login = await Host.LoginAsync("liz");
        using var refresh = await RevokeAsync(login.RefreshToken, clientId: "other-web", secret: OtherWebSecret);
        using var access = await RevokeAsync(login.AccessToken, clientId: "other-web", secret: OtherWebSecret);
        Assert.Equal(HttpStatusCode.OK, refresh.StatusCode);
        Assert.Equal(HttpStatusCode.OK, access.StatusCode);
        Assert.True(await Host.IsActiveAsync(login.AccessToken));
        using var stillRefreshes = await Host.RefreshAsync(login.RefreshToken);
        Assert.Equal(HttpStatusCode.OK, stillRefreshes.StatusCode);
    }

    [Fact]
    public async Task Revocation_requires_client_authentication_and_a_token()
    {
        using var noAuth = await Host.PostFormAsync("/oauth2/revoke", [new("token", "x")]);
        await AssertOAuthErrorAsync(noAuth, "invalid_client", HttpStatusCode.Unauthorized);
        using var noToken = await Host.PostFormAsync("/oauth2/revoke", [], Basic("web", WebSecret));
        await AssertOAuthErrorAsync(noToken, "invalid_request");
    }

    [Fact]
    public async Task Introspection_describes_an_active_token()
    {
        var login = await Host.LoginAsync("ian", c => c["acr"] = "urn:mfa");
        using var response = await Host.IntrospectAsync(login.AccessToken);
        var json = await JsonAsync(response);
        Assert.Equal("no-store", response.Headers.CacheControl?.ToString());
        Assert.True(json.GetProperty("active").GetBoolean());
        Assert.Equal("ian", json.GetProperty("sub").GetString());
        Assert.Equal("web", json.GetProperty("client_id").GetString());
        Assert.Equal("https://tokens.test.example", json.GetProperty("iss").GetString());
        Assert.Equal("urn:mfa", json.GetProperty("acr").GetString());
        Assert.True(json.GetProperty("exp").GetInt64() > DateTimeOffset.UtcNow.ToUnixTimeSeconds());
        Assert.False(string.IsNullOrEmpty(json.GetProperty("sid").GetString()));
    }

    [Fact]
    public async Task Introspection_reports_forged_unknown_and_foreign_audience_tokens_inactive()
    {
        var login = await Host.LoginAsync("jon");
        var parts = login.AccessToken.Split('.');
        var forgedClaims = JsonNode.Parse(System.Text.Encoding.UTF8.GetString(TokenService.Jose.Base64UrlEncoding.DecodeStrict(parts[1])!))!.AsObject();
        forgedClaims["sub"] = "admin";
        var forged = parts[0] + "." + TestIdp.Encode(forgedClaims) + "." + parts[2];
        foreach (var token in new[] { forged, "garbage", login.RefreshToken, Host.Idp.IdToken("jon"), parts[0] + "." + parts[1] + "." })
        {
            Assert.False(await Host.IsActiveAsync(token), token);
        }

        // The resource server "api" serves api://orders: a token only for api://billing is not for it.
        using var billing = await Host.ExchangeAsync(Host.Idp.IdToken("jon"), extra: ("audience", "api://billing"));
        Assert.False(await Host.IsActiveAsync((await JsonAsync(billing)).GetProperty("access_token").GetString()!));
    }

    [Fact]
    public async Task Introspection_needs_resource_server_credentials()
    {
        var login = await Host.LoginAsync("kim");
        using var wrong = await Host.PostFormAsync("/oauth2/introspect", [new("token", login.AccessToken)], Basic("api", "wrong-secret"));
        await AssertOAuthErrorAsync(wrong, "invalid_client", HttpStatusCode.Unauthorized);
        using var notRs = await Host.PostFormAsync("/oauth2/introspect", [new("token", login.AccessToken)], Basic("web", WebSecret));
        await AssertOAuthErrorAsync(notRs, "invalid_client", HttpStatusCode.Unauthorized);
        using var none = await Host.PostFormAsync("/oauth2/introspect", [new("token", login.AccessToken)]);
        await AssertOAuthErrorAsync(none, "invalid_client", HttpStatusCode.Unauthorized);
    }
}

public sealed class ExpiryIntrospectionTests
{
    [Fact]
    public async Task An_expired_access_token_introspects_inactive()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var host = await TokenServiceTestHost.StartAsync(time: time);
        var login = await host.LoginAsync("lou");
        Assert.True(await host.IsActiveAsync(login.AccessToken));
        time.Advance(TimeSpan.FromMinutes(15) + TimeSpan.FromSeconds(61));
        Assert.False(await host.IsActiveAsync(login.AccessToken));
    }
}
