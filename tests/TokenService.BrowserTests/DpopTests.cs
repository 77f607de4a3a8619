using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.Playwright;
using TokenService.BrowserTests.Infrastructure;

namespace TokenService.BrowserTests;

/// <summary>
/// DPoP (RFC 9449) in the SPA sample: its proof key is made by WebCrypto as non-extractable and kept in IndexedDB, the
/// tokens and the refresh cookie are bound to it, and what is copied out of the page is refused elsewhere.
/// </summary>
[Collection(BrowserCollection.Name)]
public sealed class DpopTests(BrowserFixture fixture)
{
    private SpaServers Servers => fixture.Servers;

    [BrowserFact]
    public async Task The_spa_key_cannot_be_exported_and_binds_its_tokens_which_the_api_refuses_from_a_plain_http_client()
    {
        await using var context = await fixture.NewContextAsync();
        var spa = await SpaPage.OpenAsync(context, Servers);
        var signIn = spa.Page.WaitForResponseAsync(spa.IsTokenRequest);
        var accessToken = await spa.SignInAsync("mira");
        Assert.Equal("DPoP", await TokenTypeAsync(await signIn));

        // The pair the page keeps: the private key refuses export (WebCrypto's InvalidAccessError), and the public key
        // is the one the access token is bound to (cnf.jkt, RFC 7638 thumbprint).
        var key = await spa.Page.EvaluateAsync<JsonElement>(
            """
            async () => {
              const db = await new Promise((resolve, reject) => {
                const open = indexedDB.open("token-service-dpop");
                open.onsuccess = () => resolve(open.result);
                open.onerror = () => reject(open.error);
              });
              const pairs = await new Promise((resolve, reject) => {
                const all = db.transaction("keys").objectStore("keys").getAll();
                all.onsuccess = () => resolve(all.result);
                all.onerror = () => reject(all.error);
              });
              db.close();
              const pair = pairs[0];
              let exportError = "exported";
              try {
                await crypto.subtle.exportKey("jwk", pair.privateKey);
              } catch (error) {
                exportError = error.name;
              }
              return {
                count: pairs.length,
                extractable: pair.privateKey.extractable,
                exportError,
                publicJwk: await crypto.subtle.exportKey("jwk", pair.publicKey),
              };
            }
            """);
        Assert.Equal(1, key.GetProperty("count").GetInt32());
        Assert.False(key.GetProperty("extractable").GetBoolean());
        Assert.Equal("InvalidAccessError", key.GetProperty("exportError").GetString());
        Assert.Equal(Thumbprint(key.GetProperty("publicJwk")), Claims(accessToken).GetProperty("cnf").GetProperty("jkt").GetString());

        // The page's own call succeeds with Authorization: DPoP and a proof.
        var apiRequest = spa.Page.WaitForRequestAsync(r => r.Url == new Uri(Servers.Api, "/orders").ToString() && r.Method == "GET");
        Assert.Equal(200, (await spa.CallApiAsync()).Status);
        var sent = (await apiRequest).Headers;
        Assert.StartsWith("DPoP ", sent["authorization"], StringComparison.Ordinal);
        Assert.True(sent.ContainsKey("dpop"));

        // The token copied out of the page, from a plain HTTP client: refused as a bearer token (RFC 9449 §7.1) and
        // as a DPoP token without a proof.
        foreach (var scheme in new[] { "Bearer", "DPoP" })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(Servers.Api, "/orders"));
            request.Headers.Authorization = new AuthenticationHeaderValue(scheme, accessToken);
            using var response = await Servers.Http.SendAsync(request);
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
            Assert.Contains(response.Headers.WwwAuthenticate, h => h.Scheme == "DPoP");
        }

        // The refresh cookie copied out of the browser: refused without the key's proof, and nothing changes.
        var cookie = (await spa.RefreshCookieAsync())!.Value;
        using (var stolen = new HttpRequestMessage(HttpMethod.Post, new Uri(Servers.TokenService, "/oauth2/token")))
        {
            stolen.Content = new FormUrlEncodedContent([new("grant_type", "refresh_token"), new("client_id", SpaServers.SpaClientId)]);
            stolen.Headers.Add("Cookie", "__Host-refresh_token=" + cookie);
            stolen.Headers.Add("Origin", Servers.SpaOrigin);
            using var response = await Servers.Http.SendAsync(stolen);
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            using var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            Assert.Contains(error.RootElement.GetProperty("error").GetString(), new[] { "invalid_grant", "invalid_dpop_proof" });
        }

        Assert.Equal(cookie, (await spa.RefreshCookieAsync())!.Value);
        Assert.True(await Servers.IsActiveAsync(accessToken));
        var renewed = await spa.RenewAsync();
        Assert.Equal(Claims(accessToken).GetProperty("cnf").GetProperty("jkt").GetString(), Claims(renewed).GetProperty("cnf").GetProperty("jkt").GetString());
    }

    [BrowserFact]
    public async Task A_reload_proves_the_same_key_and_sign_out_deletes_it()
    {
        await using var context = await fixture.NewContextAsync();
        var spa = await SpaPage.OpenAsync(context, Servers);
        var first = await spa.SignInAsync("omar");

        var renewal = spa.Page.WaitForResponseAsync(spa.IsTokenRequest);
        await spa.Page.ReloadAsync();
        var afterReload = await spa.AccessTokenOfAsync(await renewal);
        await spa.WaitForStateAsync("signed-in");
        Assert.Equal(Jkt(first), Jkt(afterReload));

        await spa.Page.ClickAsync("#sign-out");
        await spa.WaitForStateAsync("signed-out");
        var stored = await spa.Page.EvaluateAsync<int>(
            """
            async () => {
              const db = await new Promise((resolve) => { const open = indexedDB.open("token-service-dpop"); open.onsuccess = () => resolve(open.result); });
              const count = await new Promise((resolve) => { const c = db.transaction("keys").objectStore("keys").count(); c.onsuccess = () => resolve(c.result); });
              db.close();
              return count;
            }
            """);
        Assert.Equal(0, stored);

        // The next session gets a new key.
        var second = await spa.SignInAsync("omar");
        Assert.NotEqual(Jkt(first), Jkt(second));
    }

    [BrowserFact]
    public async Task A_browser_whose_clock_is_ten_minutes_slow_aligns_its_proofs_with_the_servers_date()
    {
        await using var context = await fixture.NewContextAsync();
        // The page's clock is 10 minutes behind; the token service refuses a proof whose iat is that old (RFC 9449 §11.1).
        await context.Clock.InstallAsync(new ClockInstallOptions { TimeDate = DateTime.UtcNow - TimeSpan.FromMinutes(10) });
        var spa = await SpaPage.OpenAsync(context, Servers);
        var behind = Servers.Time.GetUtcNow().ToUnixTimeMilliseconds() - await spa.Page.EvaluateAsync<double>("Date.now()");
        Assert.InRange(behind, TimeSpan.FromMinutes(9).TotalMilliseconds, TimeSpan.FromMinutes(11).TotalMilliseconds);

        // The page's first answer from the token service (the development IdP's, at sign-in: a signed-out load asks the
        // token service nothing) carried the server's Date: the exchange's proof is dated on the server's clock, and accepted.
        var signInRequest = spa.Page.WaitForRequestAsync(r => r.Url == new Uri(Servers.TokenService, "/oauth2/token").ToString() && r.Method == "POST");
        var accessToken = await spa.SignInAsync("tomas");
        var proof = (await signInRequest).Headers["dpop"];
        var iat = DateTimeOffset.FromUnixTimeSeconds(Claims(proof).GetProperty("iat").GetInt64());
        Assert.InRange(iat, Servers.Time.GetUtcNow() - TimeSpan.FromSeconds(30), Servers.Time.GetUtcNow() + TimeSpan.FromSeconds(5));

        Assert.NotNull(Jkt(accessToken));
        Assert.Equal(200, (await spa.CallApiAsync()).Status);
        Assert.Equal(Jkt(accessToken), Jkt(await spa.RenewAsync()));
    }

    private static async Task<string?> TokenTypeAsync(IResponse response)
    {
        using var json = JsonDocument.Parse(await response.TextAsync());
        return json.RootElement.GetProperty("token_type").GetString();
    }

    private static string? Jkt(string accessToken) => Claims(accessToken).GetProperty("cnf").GetProperty("jkt").GetString();

    private static JsonElement Claims(string accessToken)
    {
        var payload = accessToken.Split('.')[1].Replace('-', '+').Replace('_', '/');
        payload = payload.PadRight(payload.Length + ((4 - (payload.Length % 4)) % 4), '=');
        using var json = JsonDocument.Parse(Encoding.UTF8.GetString(Convert.FromBase64String(payload)));
        return json.RootElement.Clone();
    }

    /// <summary>RFC 7638 thumbprint of an EC public JWK: SHA-256 of {"crv","kty","x","y"} in that order, base64url.</summary>
    private static string Thumbprint(JsonElement jwk)
    {
        var canonical = $$"""{"crv":"{{jwk.GetProperty("crv").GetString()}}","kty":"{{jwk.GetProperty("kty").GetString()}}","x":"{{jwk.GetProperty("x").GetString()}}","y":"{{jwk.GetProperty("y").GetString()}}"}""";
        return Convert.ToBase64String(SHA256.HashData(Encoding.UTF8.GetBytes(canonical))).TrimEnd('=').Replace('+', '-').Replace('/', '_');
    }
}
