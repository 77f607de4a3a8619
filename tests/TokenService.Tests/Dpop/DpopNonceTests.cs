using System.Net;
using System.Text.Json;
using TokenService.Tests.Infrastructure;
using static TokenService.Tests.Dpop.DpopHostFixture;
using static TokenService.Tests.Infrastructure.TokenServiceTestHost;

namespace TokenService.Tests.Dpop;

public sealed class DpopNonceTests(DpopNonceHostFixture fixture) : DpopNonceTests<DpopNonceHostFixture>(fixture);

public sealed class DpopNonceTestsOnFunctions(DpopNonceFunctionsHostFixture fixture) : DpopNonceTests<DpopNonceFunctionsHostFixture>(fixture);

/// <summary>The same tests against the published app under a real Functions host (<see cref="RealFunctionsHostPool"/>).</summary>
[RealFunctionsHostTier]
[Collection(RealFunctionsHostCollection.Name)]
[NotOnRealHost(nameof(DpopNonceTests<DpopNonceRealFunctionsHostFixture>.A_forged_or_stale_nonce_is_use_dpop_nonce_and_changes_nothing), "moves the host's clock past the nonce lifetime: the real host runs on the system clock")]
public sealed class DpopNonceTestsOnRealHost(DpopNonceRealFunctionsHostFixture fixture) : DpopNonceTests<DpopNonceRealFunctionsHostFixture>(fixture);

/// <summary>
/// RFC 9449 §8 and §9 with <c>Dpop__RequireNonce</c>: a proof without a recent server nonce is answered
/// <c>use_dpop_nonce</c> with a <c>DPoP-Nonce</c> header, and changes nothing.
/// </summary>
public abstract class DpopNonceTests<TFixture>(TFixture fixture) : IClassFixture<TFixture>
    where TFixture : DpopNonceHostFixture
{
    private readonly DpopKey _key = DpopKey.Es256();

    private TFixture F => fixture;

    private static string Nonce(HttpResponseMessage response) => Assert.Single(response.Headers.GetValues("DPoP-Nonce"));

    /// <summary>Gets a nonce the way a client does (a use_dpop_nonce answer), then opens a bound session with it.</summary>
    private async Task<(string RefreshToken, string Nonce)> BoundLoginAsync(string? audience = null)
    {
        var idToken = F.Host.Idp.IdToken("dpop-nonce-" + Guid.NewGuid().ToString("N"));
        using var challenge = await F.ExchangeAsync(_key.Proof("POST", TokenUri, F.Now), "unused", audience: audience, idToken: idToken);
        await AssertOAuthErrorAsync(challenge, "use_dpop_nonce");
        using var login = await F.ExchangeAsync(_key.Proof("POST", TokenUri, F.Now, nonce: Nonce(challenge)), "unused", audience: audience, idToken: idToken);
        var json = await JsonAsync(login);
        Assert.True(login.StatusCode == HttpStatusCode.OK, json.ToString());
        return (json.GetProperty(audience is null ? "refresh_token" : "access_token").GetString()!, Nonce(login));
    }

    [Fact]
    public async Task A_proof_without_a_nonce_is_use_dpop_nonce_with_a_fresh_nonce_and_changes_nothing()
    {
        var (refreshToken, nonce) = await BoundLoginAsync();
        using var missing = await F.RefreshAsync(refreshToken, _key.Proof("POST", TokenUri, F.Now));
        await AssertOAuthErrorAsync(missing, "use_dpop_nonce");
        Assert.False(string.IsNullOrEmpty(Nonce(missing)));

        using var retried = await F.RefreshAsync(refreshToken, _key.Proof("POST", TokenUri, F.Now, nonce: Nonce(missing)));
        Assert.Equal(HttpStatusCode.OK, retried.StatusCode);
        Assert.NotEqual(nonce, string.Empty);
    }

    [Fact]
    public async Task A_forged_or_stale_nonce_is_use_dpop_nonce_and_changes_nothing()
    {
        var (refreshToken, nonce) = await BoundLoginAsync();
        using (var forged = await F.RefreshAsync(refreshToken, _key.Proof("POST", TokenUri, F.Now, nonce: "forged-nonce-value")))
        {
            await AssertOAuthErrorAsync(forged, "use_dpop_nonce");
        }

        F.Advance(TimeSpan.FromMinutes(6)); // past the default Dpop:NonceLifetime of 5 minutes
        using (var stale = await F.RefreshAsync(refreshToken, _key.Proof("POST", TokenUri, F.Now, nonce: nonce)))
        {
            await AssertOAuthErrorAsync(stale, "use_dpop_nonce");
            nonce = Nonce(stale);
        }

        using var fresh = await F.RefreshAsync(refreshToken, _key.Proof("POST", TokenUri, F.Now, nonce: nonce));
        Assert.Equal(HttpStatusCode.OK, fresh.StatusCode);
    }

    [Fact]
    public async Task The_session_endpoints_answer_use_dpop_nonce_with_a_dpop_challenge()
    {
        var (token, nonce) = await BoundLoginAsync(audience: Issuer);
        using var missing = await F.SessionsAsync(HttpMethod.Get, "/sessions", "DPoP", token, _key.Proof("GET", SessionsUri, F.Now, accessToken: token));
        Assert.Equal(HttpStatusCode.Unauthorized, missing.StatusCode);
        Assert.StartsWith("DPoP error=\"use_dpop_nonce\"", missing.Headers.WwwAuthenticate.Single().ToString(), StringComparison.Ordinal);
        Assert.False(string.IsNullOrEmpty(Nonce(missing)));

        using var accepted = await F.SessionsAsync(HttpMethod.Get, "/sessions", "DPoP", token, _key.Proof("GET", SessionsUri, F.Now, accessToken: token, nonce: nonce));
        Assert.Equal(HttpStatusCode.OK, accepted.StatusCode);
    }
}
