using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using TokenService.Tests.Infrastructure;
using static TokenService.Tests.Infrastructure.TokenServiceTestHost;

namespace TokenService.Tests.Http;

public sealed class TokenExchangeTests(HostFixture fixture) : TokenExchangeTests<HostFixture>(fixture);

/// <summary>The same tests against the Functions app (its HTTP functions invoked in-process).</summary>
public sealed class TokenExchangeTestsOnFunctions(FunctionsHostFixture fixture) : TokenExchangeTests<FunctionsHostFixture>(fixture);

/// <summary>The same tests against the published app under a real Functions host (<see cref="RealFunctionsHostPool"/>).</summary>
[RealFunctionsHostTier]
[Collection(RealFunctionsHostCollection.Name)]
[NotOnRealHost(nameof(TokenExchangeTests<RealFunctionsHostFixture>.An_id_token_issued_to_one_application_is_refused_for_another_client),
    "starts a host of its own configuration: one more Functions host start-up (1-3 min on the shared 2-core machine) for a check of configuration binding that both in-process tiers make")]
public sealed class TokenExchangeTestsOnRealHost(RealFunctionsHostFixture fixture) : TokenExchangeTests<RealFunctionsHostFixture>(fixture);

public abstract class TokenExchangeTests<TFixture>(TFixture fixture) : IClassFixture<TFixture>
    where TFixture : HostFixture
{
    private TokenServiceTestHost Host => fixture.Host;

    [Fact]
    public async Task Exchange_returns_an_rfc9068_access_token_that_an_independent_jwt_library_verifies_from_the_jwks()
    {
        using var response = await Host.ExchangeAsync(Host.Idp.IdToken("alice", c => { c["acr"] = "urn:mfa"; c["amr"] = new JsonArray("pwd", "otp"); }), extra: ("scope", "orders.read"));
        var json = await JsonAsync(response);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("no-store", response.Headers.CacheControl?.ToString());
        Assert.Equal("Bearer", json.GetProperty("token_type").GetString());
        Assert.Equal(900, json.GetProperty("expires_in").GetInt32());
        Assert.Equal("orders.read", json.GetProperty("scope").GetString());
        Assert.Equal("urn:ietf:params:oauth:token-type:access_token", json.GetProperty("issued_token_type").GetString());
        Assert.True(json.GetProperty("refresh_token").GetString()!.Length >= 43, "refresh token carries at least 256 bits");

        var jwks = new JsonWebKeySet(await Host.Client.GetStringAsync("/.well-known/jwks.json"));
        var handler = new JsonWebTokenHandler();
        var result = await handler.ValidateTokenAsync(json.GetProperty("access_token").GetString(), new TokenValidationParameters
        {
            ValidIssuer = "https://tokens.test.example",
            ValidAudiences = ["api://orders", "api://billing"],
            IssuerSigningKeys = jwks.GetSigningKeys(),
            ValidTypes = ["at+jwt"],
            ValidAlgorithms = ["RS256"],
        });
        Assert.True(result.IsValid, result.Exception?.Message);
        var token = (JsonWebToken)result.SecurityToken;
        Assert.Equal("at+jwt", token.Typ);
        Assert.Equal(jwks.Keys.Single().Kid, token.Kid);
        Assert.Equal("alice", token.Subject);
        Assert.Equal("web", token.GetClaim("client_id").Value);
        Assert.Equal("orders.read", token.GetClaim("scope").Value);
        Assert.Equal("urn:mfa", token.GetClaim("acr").Value);
        Assert.False(string.IsNullOrEmpty(token.Id));
        Assert.False(string.IsNullOrEmpty(token.GetClaim("sid").Value));
        Assert.True(token.TryGetClaim("auth_time", out _));
        Assert.Equal(token.IssuedAt, token.ValidFrom);
        Assert.Equal(TimeSpan.FromMinutes(15), token.ValidTo - token.IssuedAt);

        // Created by JsonWebTokenHandler, signed outside it: the header and claims are exactly CONTRACT §3's, nothing added.
        static string[] Names(string segment) =>
            [.. System.Text.Json.JsonDocument.Parse(Base64UrlEncoder.DecodeBytes(segment)).RootElement.EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal)];
        var parts = token.EncodedToken.Split('.');
        Assert.Equal(["alg", "kid", "typ"], Names(parts[0]));
        Assert.Equal(["acr", "amr", "aud", "auth_time", "client_id", "exp", "iat", "iss", "jti", "nbf", "scope", "sid", "sub"], Names(parts[1]));
        Assert.Equal(System.Text.Json.JsonValueKind.Number, System.Text.Json.JsonDocument.Parse(Base64UrlEncoder.DecodeBytes(parts[1])).RootElement.GetProperty("exp").ValueKind);
    }

    [Fact]
    public async Task An_id_token_already_exchanged_is_refused()
    {
        var idToken = Host.Idp.IdToken("bob");
        using var first = await Host.ExchangeAsync(idToken);
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        using var replay = await Host.ExchangeAsync(idToken);
        await AssertOAuthErrorAsync(replay, "invalid_request");
        using var otherClient = await Host.ExchangeAsync(idToken, "other-web", OtherWebSecret);
        await AssertOAuthErrorAsync(otherClient, "invalid_request");
    }

    [Fact]
    public async Task An_id_token_issued_to_one_application_is_refused_for_another_client()
    {
        // "web" takes the IdP's default audience (Idp:Audience); "other-web" is another application at the IdP.
        await using var host = await StartAsync(Host.Kind, new Dictionary<string, string?> { ["Clients:2:IdpAudience"] = "other-web-app" });
        var forWeb = host.Idp.IdToken("ivan");
        var forOther = host.Idp.IdToken("ivan", c => c["aud"] = "other-web-app");

        // Refused first (RFC 8693 §2.2.2: an unacceptable subject_token is invalid_request); refusal marks nothing as used.
        using var webWithOthers = await host.ExchangeAsync(forOther);
        await AssertOAuthErrorAsync(webWithOthers, "invalid_request");
        using var otherWithWebs = await host.ExchangeAsync(forWeb, "other-web", OtherWebSecret);
        await AssertOAuthErrorAsync(otherWithWebs, "invalid_request");

        using var web = await host.ExchangeAsync(forWeb);
        Assert.Equal(HttpStatusCode.OK, web.StatusCode);
        using var other = await host.ExchangeAsync(forOther, "other-web", OtherWebSecret);
        Assert.Equal(HttpStatusCode.OK, other.StatusCode);
    }

    [Theory]
    [InlineData("ctl\r\nuser")]
    [InlineData("bidi\u202euser")]
    [InlineData("isolate\u2066user")]
    [InlineData("line\u2028sep")]
    [InlineData("para\u2029sep")]
    [InlineData("del\u007fuser")]
    [InlineData("nel\u0085user")]
    [InlineData("   ")]
    public async Task An_id_token_naming_a_user_that_force_logout_and_events_would_refuse_is_refused(string subject)
    {
        // docs/api.md, "User ids": one rule for user ids (UserIds). A session opened for such an id could be ended by no admin
        // and no IdP event. RFC 8693 §2.2.2: an unacceptable subject_token is invalid_request; nothing is marked used.
        using var bySub = await Host.ExchangeAsync(Host.Idp.IdToken(subject));
        await AssertOAuthErrorAsync(bySub, "invalid_request");
        Assert.Equal("no-store", bySub.Headers.CacheControl?.ToString());
    }

    [Fact]
    public async Task The_user_id_rule_holds_for_the_configured_user_id_claim_and_for_sub()
    {
        // When another claim names the user (Entra: oid), both it and the sub (it goes into our access tokens) obey it.
        await using var host = await StartAsync(Host.Kind, new Dictionary<string, string?> { ["Idp:UserIdClaim"] = "oid" });
        using var byOid = await host.ExchangeAsync(host.Idp.IdToken("fine-sub", c => c["oid"] = "ctl\r\nuser"));
        await AssertOAuthErrorAsync(byOid, "invalid_request");
        using var bySub = await host.ExchangeAsync(host.Idp.IdToken("bidi\u202euser", c => c["oid"] = Guid.NewGuid().ToString()));
        await AssertOAuthErrorAsync(bySub, "invalid_request");
        using var fine = await host.ExchangeAsync(host.Idp.IdToken("Zoë 山田/100%", c => c["oid"] = Guid.NewGuid().ToString()));
        Assert.Equal(HttpStatusCode.OK, fine.StatusCode);
    }

    [Fact]
    public async Task An_id_token_for_several_audiences_is_exchanged_only_when_its_azp_is_this_client()
    {
        // OIDC Core §3.1.3.7 items 4 and 5: several audiences need an azp, and any azp must be the client ("web" takes
        // Idp:Audience). Refused as an unacceptable subject_token (RFC 8693 §2.2.2), and marked as used by none.
        static JsonArray Audiences() => [TestIdp.Audience, "https://graph.example"];
        using var noAzp = await Host.ExchangeAsync(Host.Idp.IdToken("judy", c => c["aud"] = Audiences()));
        await AssertOAuthErrorAsync(noAzp, "invalid_request");
        using var otherAzp = await Host.ExchangeAsync(Host.Idp.IdToken("judy", c => { c["aud"] = Audiences(); c["azp"] = "other-web-app"; }));
        await AssertOAuthErrorAsync(otherAzp, "invalid_request");
        using var numberAzp = await Host.ExchangeAsync(Host.Idp.IdToken("judy", c => { c["aud"] = Audiences(); c["azp"] = 5; }));
        await AssertOAuthErrorAsync(numberAzp, "invalid_request");
        using var oneAudienceOtherAzp = await Host.ExchangeAsync(Host.Idp.IdToken("judy", c => c["azp"] = "other-web-app"));
        await AssertOAuthErrorAsync(oneAudienceOtherAzp, "invalid_request");

        using var ours = await Host.ExchangeAsync(Host.Idp.IdToken("judy", c => { c["aud"] = Audiences(); c["azp"] = TestIdp.Audience; }));
        Assert.Equal(HttpStatusCode.OK, ours.StatusCode);
        using var oneAudienceOurAzp = await Host.ExchangeAsync(Host.Idp.IdToken("judy", c => c["azp"] = TestIdp.Audience));
        Assert.Equal(HttpStatusCode.OK, oneAudienceOurAzp.StatusCode);
    }

    public static TheoryData<string> BadIdTokens()
    {
        using var idp = new TestIdp();
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var valid = idp.IdToken("carol");
        var parts = valid.Split('.');
        var none = TestIdp.Encode(new JsonObject { ["alg"] = "none" }) + "." + TestIdp.Encode(idp.Claims("carol")) + ".";
        return new TheoryData<string>
        {
            none,
            none.Replace(TestIdp.Encode(new JsonObject { ["alg"] = "none" }), TestIdp.Encode(new JsonObject { ["alg"] = "NoNe" }), StringComparison.Ordinal),
            idp.IdToken("carol", c => c["iss"] = "https://evil.example"),
            idp.IdToken("carol", c => c["aud"] = "other"),
            idp.IdToken("carol", c => c["exp"] = now - 3600),
            idp.IdToken("carol", c => c["nbf"] = now + 3600),
            idp.IdToken("carol", c => c.Remove("exp")),
            idp.IdToken("carol", c => c.Remove("sub")),
            parts[0] + "." + parts[1],
            valid + "." + parts[1],
            valid + ".x.y",
            parts[0] + "=." + parts[1] + "." + parts[2],
            parts[0] + "." + parts[1] + " ." + parts[2],
            parts[0] + "." + TestIdp.Encode(idp.Claims("admin")) + "." + parts[2],
            "not-a-jwt",
            new string('a', 100_00) + "." + new string('b', 100) + "." + new string('c', 100),
            Convert.ToBase64String(Encoding.UTF8.GetBytes("{\"alg\":\"RS256\"}")) + "." + parts[1] + "." + parts[2],
        };
    }

    [Theory]
    [MemberData(nameof(BadIdTokens))]
    public async Task Bad_id_tokens_get_oauth_error_json_and_the_host_stays_healthy(string idToken)
    {
        using var response = await Host.ExchangeAsync(idToken);
        await AssertOAuthErrorAsync(response, "invalid_request");
        using var health = await Host.Client.GetAsync("/healthz");
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
    }

    [Fact]
    public async Task Hs256_signed_with_the_idp_public_key_is_refused_over_http()
    {
        var header = new JsonObject { ["alg"] = "HS256", ["kid"] = Host.Idp.RsaKid };
        var input = TestIdp.Encode(header) + "." + TestIdp.Encode(Host.Idp.Claims("mallory"));
        var mac = System.Security.Cryptography.HMACSHA256.HashData(Encoding.ASCII.GetBytes(Host.Idp.Rsa.ExportSubjectPublicKeyInfoPem()), Encoding.ASCII.GetBytes(input));
        using var response = await Host.ExchangeAsync(input + "." + TokenService.Jose.Base64UrlEncoding.Encode(mac));
        await AssertOAuthErrorAsync(response, "invalid_request");
    }

    [Fact]
    public async Task Es256_id_tokens_from_the_idp_are_accepted()
    {
        using var response = await Host.ExchangeAsync(Host.Idp.Sign(Host.Idp.Claims("erin"), Host.Idp.Header("ES256")));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task Our_own_access_token_is_not_accepted_as_an_id_token()
    {
        var pair = await Host.LoginAsync("frank");
        using var response = await Host.ExchangeAsync(pair.AccessToken);
        await AssertOAuthErrorAsync(response, "invalid_request");
    }

    [Fact]
    public async Task Scope_and_audience_are_limited_to_what_the_client_is_allowed()
    {
        using var badScope = await Host.ExchangeAsync(Host.Idp.IdToken("gina"), extra: ("scope", "orders.read admin"));
        await AssertOAuthErrorAsync(badScope, "invalid_scope");
        using var badAudience = await Host.ExchangeAsync(Host.Idp.IdToken("gina"), extra: ("audience", "api://payroll"));
        await AssertOAuthErrorAsync(badAudience, "invalid_target");

        using var narrowed = await Host.ExchangeAsync(Host.Idp.IdToken("gina"), extra: ("audience", "api://billing"));
        var json = await JsonAsync(narrowed);
        var token = new JsonWebToken(json.GetProperty("access_token").GetString());
        Assert.Equal(["api://billing"], token.Audiences);
        Assert.Equal("orders.read orders.write", json.GetProperty("scope").GetString());
    }

    [Fact]
    public async Task Client_authentication_failures_answer_401_invalid_client()
    {
        using var wrongSecret = await Host.ExchangeAsync(Host.Idp.IdToken("hank"), "web", "wrong-secret");
        await AssertOAuthErrorAsync(wrongSecret, "invalid_client", HttpStatusCode.Unauthorized);
        Assert.StartsWith("Basic", wrongSecret.Headers.WwwAuthenticate.ToString(), StringComparison.Ordinal);

        using var unknown = await Host.ExchangeAsync(Host.Idp.IdToken("hank"), "nobody", "whatever-secret");
        await AssertOAuthErrorAsync(unknown, "invalid_client", HttpStatusCode.Unauthorized);

        using var noAuth = await Host.PostFormAsync("/oauth2/token", [new("grant_type", "refresh_token"), new("refresh_token", "x")]);
        await AssertOAuthErrorAsync(noAuth, "invalid_client", HttpStatusCode.Unauthorized);

        using var resourceServer = await Host.ExchangeAsync(Host.Idp.IdToken("hank"), "api", ApiSecret);
        await AssertOAuthErrorAsync(resourceServer, "unauthorized_client");

        using var twoMethods = await Host.PostFormAsync("/oauth2/token", [new("grant_type", "refresh_token"), new("client_secret", WebSecret)], Basic("web", WebSecret));
        await AssertOAuthErrorAsync(twoMethods, "invalid_request");
    }

    [Fact]
    public async Task The_token_endpoint_takes_post_with_form_content_only()
    {
        using var get = await Host.Client.GetAsync("/oauth2/token");
        if (Host.Kind == HostKind.Standalone)
        {
            await AssertOAuthErrorAsync(get, "invalid_request", HttpStatusCode.MethodNotAllowed);
        }
        else
        {
            // The Functions trigger declares POST and OPTIONS only: the host refuses other methods before our code.
            Assert.Equal(HttpStatusCode.NotFound, get.StatusCode);
        }

        using var json = new HttpRequestMessage(HttpMethod.Post, "/oauth2/token") { Content = new StringContent("{\"grant_type\":\"refresh_token\"}", Encoding.UTF8, "application/json") };
        json.Headers.Authorization = Basic("web", WebSecret);
        using var jsonResponse = await Host.Client.SendAsync(json);
        await AssertOAuthErrorAsync(jsonResponse, "invalid_request");

        using var duplicate = await Host.PostFormAsync("/oauth2/token", [new("grant_type", "refresh_token"), new("grant_type", "refresh_token")], Basic("web", WebSecret));
        await AssertOAuthErrorAsync(duplicate, "invalid_request");

        using var missing = await Host.PostFormAsync("/oauth2/token", [new("scope", "x")], Basic("web", WebSecret));
        await AssertOAuthErrorAsync(missing, "invalid_request");

        using var unknown = await Host.PostFormAsync("/oauth2/token", [new("grant_type", "password")], Basic("web", WebSecret));
        await AssertOAuthErrorAsync(unknown, "unsupported_grant_type");

        using var wrongType = await Host.ExchangeAsync(Host.Idp.IdToken("ivan"), extra: []);
        Assert.Equal(HttpStatusCode.OK, wrongType.StatusCode);
        using var accessType = await Host.PostFormAsync("/oauth2/token",
            [new("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"), new("subject_token", Host.Idp.IdToken("ivan")), new("subject_token_type", "urn:ietf:params:oauth:token-type:access_token")],
            Basic("web", WebSecret));
        await AssertOAuthErrorAsync(accessType, "invalid_request");
    }

    [Fact]
    public async Task Oversized_bodies_are_refused_with_a_4xx()
    {
        using var huge = new HttpRequestMessage(HttpMethod.Post, "/oauth2/token")
        {
            Content = new StringContent("grant_type=refresh_token&refresh_token=" + new string('a', 200_000), Encoding.ASCII, "application/x-www-form-urlencoded"),
        };
        huge.Headers.Authorization = Basic("web", WebSecret);
        using var response = await Host.Client.SendAsync(huge);
        Assert.InRange((int)response.StatusCode, 400, 499);

        using var many = await Host.PostFormAsync("/oauth2/token", Enumerable.Range(0, 500).Select(i => new KeyValuePair<string, string>("p" + i, "v")), Basic("web", WebSecret));
        Assert.InRange((int)many.StatusCode, 400, 499);
    }

    [Fact]
    public async Task Unknown_routes_answer_problem_details()
    {
        using var response = await Host.Client.GetAsync("/nope");
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        if (Host.Kind == HostKind.Standalone)
        {
            // The Functions host answers paths that no function declares itself; our code never sees them.
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            using var fileLike = await Host.Client.GetAsync("/foo.json");
            Assert.Equal(HttpStatusCode.NotFound, fileLike.StatusCode);
            Assert.Equal("application/problem+json", fileLike.Content.Headers.ContentType?.MediaType);
        }
    }
}
