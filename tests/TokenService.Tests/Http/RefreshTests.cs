using System.Net;
using Microsoft.IdentityModel.JsonWebTokens;
using TokenService.Tests.Infrastructure;
using static TokenService.Tests.Infrastructure.TokenServiceTestHost;
using Microsoft.Extensions.Time.Testing;

namespace TokenService.Tests.Http;

public sealed class RefreshTests(HostFixture fixture) : RefreshTests<HostFixture>(fixture);

/// <summary>The same tests against the Functions app (its HTTP functions invoked in-process).</summary>
public sealed class RefreshTestsOnFunctions(FunctionsHostFixture fixture) : RefreshTests<FunctionsHostFixture>(fixture);

/// <summary>The same tests against the published app under a real Functions host (<see cref="RealFunctionsHostPool"/>).</summary>
[RealFunctionsHostTier]
[Collection(RealFunctionsHostCollection.Name)]
public sealed class RefreshTestsOnRealHost(RealFunctionsHostFixture fixture) : RefreshTests<RealFunctionsHostFixture>(fixture);

public abstract class RefreshTests<TFixture>(TFixture fixture) : IClassFixture<TFixture>
    where TFixture : HostFixture
{
    private TokenServiceTestHost Host => fixture.Host;

    [Fact]
    public async Task Refresh_rotates_the_refresh_token_and_keeps_the_session()
    {
        var login = await Host.LoginAsync("rita");
        using var response = await Host.RefreshAsync(login.RefreshToken);
        var json = await JsonAsync(response);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("no-store", response.Headers.CacheControl?.ToString());
        var rotated = json.GetProperty("refresh_token").GetString()!;
        Assert.NotEqual(login.RefreshToken, rotated);
        Assert.False(json.TryGetProperty("issued_token_type", out _));
        var before = new JsonWebToken(login.AccessToken);
        var after = new JsonWebToken(json.GetProperty("access_token").GetString());
        Assert.Equal(before.GetClaim("sid").Value, after.GetClaim("sid").Value);
        Assert.NotEqual(before.Id, after.Id);

        using var again = await Host.RefreshAsync(rotated);
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
    }

    [Fact]
    public async Task Presenting_a_rotated_token_again_revokes_the_whole_session()
    {
        var login = await Host.LoginAsync("sam");
        using var first = await Host.RefreshAsync(login.RefreshToken);
        var current = (await JsonAsync(first)).GetProperty("refresh_token").GetString()!;
        var currentAccess = (await JsonAsync(first)).GetProperty("access_token").GetString()!;

        using var reuse = await Host.RefreshAsync(login.RefreshToken);
        await AssertOAuthErrorAsync(reuse, "invalid_grant");

        using var afterReuse = await Host.RefreshAsync(current);
        await AssertOAuthErrorAsync(afterReuse, "invalid_grant");
        Assert.False(await Host.IsActiveAsync(currentAccess));
        Assert.False(await Host.IsActiveAsync(login.AccessToken));
    }

    [Fact]
    public async Task An_old_rotated_token_several_generations_back_is_also_reuse()
    {
        var login = await Host.LoginAsync("sue");
        var token = login.RefreshToken;
        var history = new List<string> { token };
        for (var i = 0; i < 4; i++)
        {
            using var r = await Host.RefreshAsync(token);
            token = (await JsonAsync(r)).GetProperty("refresh_token").GetString()!;
            history.Add(token);
        }

        using var reuse = await Host.RefreshAsync(history[1]);
        await AssertOAuthErrorAsync(reuse, "invalid_grant");
        using var latest = await Host.RefreshAsync(token);
        await AssertOAuthErrorAsync(latest, "invalid_grant");
    }

    [Fact]
    public async Task A_refresh_token_is_bound_to_its_client()
    {
        var login = await Host.LoginAsync("tom");
        using var foreign = await Host.RefreshAsync(login.RefreshToken, "other-web", OtherWebSecret);
        await AssertOAuthErrorAsync(foreign, "invalid_grant");

        // The owner is not harmed by another client's attempt.
        using var owner = await Host.RefreshAsync(login.RefreshToken);
        Assert.Equal(HttpStatusCode.OK, owner.StatusCode);
    }

    [Fact]
    public async Task A_refresh_may_narrow_the_scope_but_never_widen_it()
    {
        using var exchange = await Host.ExchangeAsync(Host.Idp.IdToken("uma"), extra: ("scope", "orders.read"));
        var refresh = (await JsonAsync(exchange)).GetProperty("refresh_token").GetString()!;

        using var widen = await Host.RefreshAsync(refresh, extra: ("scope", "orders.read orders.write"));
        await AssertOAuthErrorAsync(widen, "invalid_scope");

        var login = await Host.LoginAsync("uma2");
        using var narrow = await Host.RefreshAsync(login.RefreshToken, extra: ("scope", "orders.read"));
        var json = await JsonAsync(narrow);
        Assert.Equal("orders.read", json.GetProperty("scope").GetString());
        using var again = await Host.RefreshAsync(json.GetProperty("refresh_token").GetString()!);
        Assert.Equal("orders.read orders.write", (await JsonAsync(again)).GetProperty("scope").GetString());
    }

    [Theory]
    [InlineData("")]
    [InlineData("garbage")]
    [InlineData("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")]
    [InlineData("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")]
    public async Task Unknown_or_malformed_refresh_tokens_are_invalid_grant(string token)
    {
        using var response = await Host.RefreshAsync(token);
        await AssertOAuthErrorAsync(response, token.Length == 0 ? "invalid_request" : "invalid_grant");
    }

    [Fact]
    public async Task A_forged_token_for_a_real_session_does_not_revoke_it()
    {
        var login = await Host.LoginAsync("vic");
        // Same session id, different secret: unknown token, not reuse.
        var forged = login.RefreshToken[..40] + new string('A', 40);
        using var response = await Host.RefreshAsync(forged);
        await AssertOAuthErrorAsync(response, "invalid_grant");
        Assert.True(await Host.IsActiveAsync(login.AccessToken));
        using var owner = await Host.RefreshAsync(login.RefreshToken);
        Assert.Equal(HttpStatusCode.OK, owner.StatusCode);
    }
}

public sealed class SessionLifetimeTests
{
    [Fact]
    public async Task A_session_ends_after_its_idle_timeout()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var host = await TokenServiceTestHost.StartAsync(new Dictionary<string, string?> { ["TokenService:SessionIdleTimeout"] = "00:30:00" }, time: time);
        var login = await host.LoginAsync("wendy");
        time.Advance(TimeSpan.FromMinutes(20));
        using var active = await host.RefreshAsync(login.RefreshToken);
        var next = (await JsonAsync(active)).GetProperty("refresh_token").GetString()!;
        time.Advance(TimeSpan.FromMinutes(31));
        using var idle = await host.RefreshAsync(next);
        await AssertOAuthErrorAsync(idle, "invalid_grant");
    }

    [Fact]
    public async Task Nothing_outlives_the_absolute_lifetime_even_with_activity()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var host = await TokenServiceTestHost.StartAsync(new Dictionary<string, string?>
        {
            ["TokenService:SessionIdleTimeout"] = "01:00:00",
            ["TokenService:SessionAbsoluteLifetime"] = "02:00:00",
            ["TokenService:AccessTokenLifetime"] = "00:45:00",
        }, time: time);
        var sessionEnd = time.GetUtcNow().AddHours(2);
        var login = await host.LoginAsync("xena");
        var token = login.RefreshToken;
        for (var i = 0; i < 2; i++)
        {
            time.Advance(TimeSpan.FromMinutes(50));
            using var r = await host.RefreshAsync(token);
            var json = await JsonAsync(r);
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
            token = json.GetProperty("refresh_token").GetString()!;
            var access = new JsonWebToken(json.GetProperty("access_token").GetString());
            Assert.True(access.ValidTo <= sessionEnd.UtcDateTime, $"access token until {access.ValidTo:O} outlives the session ({sessionEnd:O})");
        }

        // 100 minutes in, 45-minute access tokens are capped at the 120-minute absolute lifetime: expires_in shrinks.
        time.Advance(TimeSpan.FromMinutes(20) + TimeSpan.FromSeconds(1));
        using var expired = await host.RefreshAsync(token);
        await AssertOAuthErrorAsync(expired, "invalid_grant");
    }

    [Fact]
    public async Task Reuse_leeway_accepts_only_the_immediately_previous_token_within_the_window()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var host = await TokenServiceTestHost.StartAsync(new Dictionary<string, string?> { ["TokenService:RefreshTokenReuseLeeway"] = "00:00:30" }, time: time);
        var login = await host.LoginAsync("yuri");
        using var first = await host.RefreshAsync(login.RefreshToken);
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);

        time.Advance(TimeSpan.FromSeconds(10));
        using var withinLeeway = await host.RefreshAsync(login.RefreshToken);
        Assert.Equal(HttpStatusCode.OK, withinLeeway.StatusCode);
        var latest = (await JsonAsync(withinLeeway)).GetProperty("refresh_token").GetString()!;

        // The original token is now two rotations back: reuse, whatever the leeway.
        using var twoBack = await host.RefreshAsync(login.RefreshToken);
        await AssertOAuthErrorAsync(twoBack, "invalid_grant");
        using var sessionGone = await host.RefreshAsync(latest);
        await AssertOAuthErrorAsync(sessionGone, "invalid_grant");
    }

    [Fact]
    public async Task Without_leeway_the_previous_token_is_reuse_even_one_second_later()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var host = await TokenServiceTestHost.StartAsync(time: time);
        var login = await host.LoginAsync("zoe");
        using var first = await host.RefreshAsync(login.RefreshToken);
        time.Advance(TimeSpan.FromSeconds(1));
        using var reuse = await host.RefreshAsync(login.RefreshToken);
        await AssertOAuthErrorAsync(reuse, "invalid_grant");
    }
}
