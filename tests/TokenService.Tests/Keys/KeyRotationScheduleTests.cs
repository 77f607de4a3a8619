using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using TokenService.Keys;
using TokenService.Tests.Infrastructure;
using static TokenService.Tests.Infrastructure.TokenServiceTestHost;

namespace TokenService.Tests.Keys;

/// <summary>
/// Key rotation (docs/api.md, "Keys and the JWKS") shown on the standalone host with the local key provider and seconds-long timings: the
/// signing key changes on schedule, a key is published at least the propagation time before it signs, every
/// token verifies against every JWKS a cache may hold when it is issued, and a retired key leaves the JWKS after
/// its retention. The host runs on a fake clock advanced in quarter-second steps, so the outcome does not depend
/// on how fast a loaded machine runs the loop: every instant below is exact.
/// </summary>
public sealed class KeyRotationScheduleTests
{
    private static readonly DateTimeOffset Start = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private static readonly TimeSpan RotationInterval = TimeSpan.FromSeconds(8);
    private static readonly TimeSpan PropagationTime = TimeSpan.FromSeconds(3);
    private static readonly TimeSpan RetentionTime = TimeSpan.FromSeconds(4);
    private static readonly TimeSpan CheckInterval = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan Step = TimeSpan.FromMilliseconds(250);
    private static readonly TimeSpan Duration = TimeSpan.FromSeconds(22);

    private static readonly JsonWebTokenHandler Handler = new();

    [Fact]
    public async Task Keys_rotate_on_schedule_and_every_token_verifies_against_the_jwks_of_its_time()
    {
        var time = new FakeTimeProvider(Start);
        await using var host = await TokenServiceTestHost.StartAsync(new Dictionary<string, string?>
        {
            ["Keys:RotationInterval"] = RotationInterval.ToString(),
            ["Keys:PropagationTime"] = PropagationTime.ToString(),
            ["Keys:RetentionTime"] = RetentionTime.ToString(),
            ["Keys:CheckInterval"] = CheckInterval.ToString(),
            ["TokenService:AccessTokenLifetime"] = "00:00:02",
        }, time: time);
        var keys = host.Services.GetRequiredService<ISigningKeyService>();

        var served = new List<(DateTimeOffset At, DateTimeOffset FreshUntil, JsonWebKeySet Jwks)>();
        var firstSeen = new Dictionary<string, DateTimeOffset>();
        var lastSeen = new Dictionary<string, DateTimeOffset>();
        var firstSignatures = new List<(string Kid, DateTimeOffset At)>();
        var issued = new List<(string Token, DateTimeOffset ExpiresAt)>();

        async Task<JsonWebKeySet> FetchJwksAsync()
        {
            using var response = await host.Client.GetAsync("/.well-known/jwks.json");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var now = time.GetUtcNow();
            var jwks = new JsonWebKeySet(await response.Content.ReadAsStringAsync());
            served.Add((now, now + (response.Headers.CacheControl?.MaxAge ?? TimeSpan.Zero), jwks));
            foreach (var key in jwks.Keys)
            {
                firstSeen.TryAdd(key.Kid, now);
                lastSeen[key.Kid] = now;
            }

            return jwks;
        }

        async Task ObserveAsync(string token, JsonWebKeySet current)
        {
            var now = time.GetUtcNow();
            var jwt = new JsonWebToken(token);
            if (!firstSignatures.Exists(s => s.Kid == jwt.Kid))
            {
                firstSignatures.Add((jwt.Kid, now));
            }

            // Every JWKS a cache honouring max-age may still hold now verifies the new token, not only the current one.
            foreach (var (at, freshUntil, jwks) in served.Where(s => s.FreshUntil >= now))
            {
                await AssertVerifiesAsync(token, jwks, now, $"the JWKS served at +{(at - Start).TotalSeconds}s");
            }

            // And every token issued before, until it expires, still verifies against the current JWKS.
            issued.RemoveAll(t => t.ExpiresAt <= now);
            foreach (var (earlier, _) in issued)
            {
                await AssertVerifiesAsync(earlier, current, now, "the current JWKS");
            }

            issued.Add((token, new DateTimeOffset(jwt.ValidTo, TimeSpan.Zero)));
        }

        var current = await FetchJwksAsync();
        var login = await host.LoginAsync("rotation");
        await ObserveAsync(login.AccessToken, current);
        var refreshToken = login.RefreshToken;
        while (time.GetUtcNow() - Start < Duration)
        {
            time.Advance(Step);
            if ((time.GetUtcNow() - Start).Ticks % CheckInterval.Ticks == 0)
            {
                // The check the hosted service's timer runs at this tick. That timer fires on the fake clock too,
                // but runs its check in the background: awaiting the same idempotent check here makes its outcome
                // part of this step instead of something to wait for.
                await keys.RunRotationCheckAsync(CancellationToken.None);
            }

            current = await FetchJwksAsync();
            using var refresh = await host.RefreshAsync(refreshToken);
            Assert.Equal(HttpStatusCode.OK, refresh.StatusCode);
            var json = await JsonAsync(refresh);
            refreshToken = json.GetProperty("refresh_token").GetString()!;
            await ObserveAsync(json.GetProperty("access_token").GetString()!, current);
        }

        // On schedule: the first key signs from the start and each next one exactly a rotation interval later.
        Assert.True(firstSignatures.Count == 3, $"expected three signing keys in {Duration}: {string.Join(", ", firstSignatures)}");
        Assert.Equal(Start, firstSignatures[0].At);
        for (var i = 1; i < firstSignatures.Count; i++)
        {
            var (kid, signedAt) = firstSignatures[i];
            Assert.Equal(RotationInterval, signedAt - firstSignatures[i - 1].At);
            Assert.True(signedAt - firstSeen[kid] >= PropagationTime, $"{kid} was published only {(signedAt - firstSeen[kid]).TotalSeconds}s before signing");
        }

        // A key retires when its successor starts signing, stays in every JWKS for the retention time and then leaves.
        var removals = 0;
        for (var i = 0; i + 1 < firstSignatures.Count; i++)
        {
            var kid = firstSignatures[i].Kid;
            var removeAt = firstSignatures[i + 1].At + RetentionTime;
            if (removeAt <= Start + Duration)
            {
                Assert.True(lastSeen[kid] < removeAt, $"{kid} was still published at +{(lastSeen[kid] - Start).TotalSeconds}s, after its retention");
                Assert.True(lastSeen[kid] + Step >= removeAt, $"{kid} left the JWKS at +{(lastSeen[kid] - Start).TotalSeconds}s, before its retention ended");
                Assert.All(served.Where(s => s.At >= firstSeen[kid] && s.At < removeAt), s => Assert.Contains(s.Jwks.Keys, k => k.Kid == kid));
                removals++;
            }
        }

        Assert.Equal(2, removals);
    }

    private static async Task AssertVerifiesAsync(string token, JsonWebKeySet jwks, DateTimeOffset now, string against)
    {
        var result = await Handler.ValidateTokenAsync(token, new TokenValidationParameters
        {
            ValidIssuer = "https://tokens.test.example",
            ValidAudiences = ["api://orders", "api://billing"],
            IssuerSigningKeys = jwks.GetSigningKeys(),
            ValidTypes = ["at+jwt"],

            // Lifetime on the service's (fake) clock, without skew: the wall clock is not the time under test.
            LifetimeValidator = (notBefore, expires, _, _) =>
                (notBefore is null || notBefore.Value <= now.UtcDateTime) && expires is { } exp && now.UtcDateTime < exp,
        });
        Assert.True(result.IsValid, $"a token signed by {new JsonWebToken(token).Kid} does not verify against {against} at +{(now - Start).TotalSeconds}s: {result.Exception?.Message}");
    }
}
