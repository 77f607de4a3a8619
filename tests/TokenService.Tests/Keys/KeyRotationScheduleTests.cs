using System.Net;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using TokenService.Tests.Infrastructure;
using static TokenService.Tests.Infrastructure.TokenServiceTestHost;

namespace TokenService.Tests.Keys;

/// <summary>
/// Issue 4's demonstration on the standalone host with the local key provider and seconds-long timings:
/// the signing key changes on schedule, a key is published before it signs, every token verifies against the
/// JWKS served when it was issued, and a retired key leaves the JWKS after its retention.
/// </summary>
public sealed class KeyRotationScheduleTests
{
    [Fact]
    public async Task Keys_rotate_on_schedule_and_every_token_verifies_against_the_jwks_of_its_time()
    {
        await using var host = await TokenServiceTestHost.StartAsync(new Dictionary<string, string?>
        {
            ["Keys:RotationInterval"] = "00:00:08",
            ["Keys:PropagationTime"] = "00:00:03",
            ["Keys:RetentionTime"] = "00:00:04",
            ["Keys:CheckInterval"] = "00:00:01",
            ["TokenService:AccessTokenLifetime"] = "00:00:02",
        });

        var firstSeen = new Dictionary<string, DateTimeOffset>();
        var lastSeen = new Dictionary<string, DateTimeOffset>();
        var firstSignature = new Dictionary<string, DateTimeOffset>();
        var login = await host.LoginAsync("rotation");
        var refreshToken = login.RefreshToken;
        var handler = new JsonWebTokenHandler();
        var deadline = DateTimeOffset.UtcNow.AddSeconds(22);
        while (DateTimeOffset.UtcNow < deadline)
        {
            var jwksJson = await host.Client.GetStringAsync("/.well-known/jwks.json");
            var now = DateTimeOffset.UtcNow;
            var jwks = new JsonWebKeySet(jwksJson);
            foreach (var key in jwks.Keys)
            {
                firstSeen.TryAdd(key.Kid, now);
                lastSeen[key.Kid] = now;
            }

            using var refresh = await host.RefreshAsync(refreshToken);
            Assert.Equal(HttpStatusCode.OK, refresh.StatusCode);
            var json = await JsonAsync(refresh);
            refreshToken = json.GetProperty("refresh_token").GetString()!;
            var token = json.GetProperty("access_token").GetString()!;
            var kid = new JsonWebToken(token).Kid;
            firstSignature.TryAdd(kid, DateTimeOffset.UtcNow);

            // Verifies against the JWKS fetched just before it was issued (a cache at most one poll old).
            var result = await handler.ValidateTokenAsync(token, new TokenValidationParameters
            {
                ValidIssuer = "https://tokens.test.example",
                ValidAudiences = ["api://orders", "api://billing"],
                IssuerSigningKeys = jwks.GetSigningKeys(),
                ValidTypes = ["at+jwt"],
            });
            Assert.True(result.IsValid, $"token signed by {kid} does not verify against the JWKS of its time: {result.Exception?.Message}");
            await Task.Delay(250);
        }

        Assert.True(firstSignature.Count >= 2, $"the signing key never changed: {string.Join(", ", firstSignature.Keys)}");
        foreach (var (kid, signedAt) in firstSignature.Skip(1))
        {
            // Published at least about the propagation time before its first signature.
            Assert.True(signedAt - firstSeen[kid] >= TimeSpan.FromSeconds(2), $"{kid} was published only {(signedAt - firstSeen[kid]).TotalSeconds:F1}s before signing");
        }

        var firstKey = firstSignature.Keys.First();
        var secondKeyStart = firstSignature.Values.Skip(1).First();
        Assert.True(lastSeen[firstKey] < deadline.AddSeconds(-1), "the retired key never left the JWKS");
        Assert.True(lastSeen[firstKey] >= secondKeyStart.AddSeconds(2), "the retired key left the JWKS before its retention");
    }
}
