using System.Net;
using System.Text.Json;
using TokenService.Tests.Infrastructure;
using static TokenService.Tests.Infrastructure.TokenServiceTestHost;

namespace TokenService.Tests.Http;

public sealed class TokenEndpointResponseTests(HostFixture fixture) : TokenEndpointResponseTests<HostFixture>(fixture);

/// <summary>The same tests against the Functions app (its HTTP functions invoked in-process).</summary>
public sealed class TokenEndpointResponseTestsOnFunctions(FunctionsHostFixture fixture) : TokenEndpointResponseTests<FunctionsHostFixture>(fixture);

/// <summary>
/// Every answer of <c>POST /oauth2/token</c> to the letter: the status, the exact RFC 6749 §5.2 body (error code and
/// description), the no-store headers (§5.1), and the members of a token response in their order. The other suites
/// check error codes; this one pins the descriptions too, which clients and runbooks quote.
/// </summary>
public abstract class TokenEndpointResponseTests<TFixture>(TFixture fixture) : IClassFixture<TFixture>
    where TFixture : HostFixture
{
    private const string TokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange";
    private const string IdTokenType = "urn:ietf:params:oauth:token-type:id_token";
    private const string AccessTokenType = "urn:ietf:params:oauth:token-type:access_token";

    private TokenServiceTestHost Host => fixture.Host;

    public static TheoryData<string, string, string, string> RequestErrors() => new()
    {
        // (case, form as name=value pairs joined by '&' (values unescaped), error, description)
        { "no grant_type", "scope=orders.read", "invalid_request", "grant_type is required." },
        { "unknown grant", "grant_type=password", "unsupported_grant_type", "Supported grants: token exchange (RFC 8693) and refresh_token." },
        { "no subject_token", $"grant_type={TokenExchange}&subject_token_type={IdTokenType}", "invalid_request", "subject_token and subject_token_type are required." },
        { "no subject_token_type", $"grant_type={TokenExchange}&subject_token=x", "invalid_request", "subject_token and subject_token_type are required." },
        { "access token as subject", $"grant_type={TokenExchange}&subject_token=x&subject_token_type={AccessTokenType}", "invalid_request", $"subject_token_type must be {IdTokenType}." },
        { "refresh token requested", $"grant_type={TokenExchange}&subject_token=x&subject_token_type={IdTokenType}&requested_token_type=urn:ietf:params:oauth:token-type:refresh_token", "invalid_request", $"Only {AccessTokenType} can be requested." },
        { "actor_token", $"grant_type={TokenExchange}&subject_token=x&subject_token_type={IdTokenType}&actor_token=y", "invalid_request", "Delegation (actor_token) is not supported." },
        { "actor_token_type", $"grant_type={TokenExchange}&subject_token=x&subject_token_type={IdTokenType}&actor_token_type={IdTokenType}", "invalid_request", "Delegation (actor_token) is not supported." },
        { "scope not allowed", $"grant_type={TokenExchange}&subject_token=x&subject_token_type={IdTokenType}&scope=orders.read admin", "invalid_scope", "The requested scope is not allowed for this client." },
        { "blank scope", $"grant_type={TokenExchange}&subject_token=x&subject_token_type={IdTokenType}&scope=  ", "invalid_scope", "The requested scope is not allowed for this client." },
        { "audience not allowed", $"grant_type={TokenExchange}&subject_token=x&subject_token_type={IdTokenType}&audience=api://payroll", "invalid_target", "The requested audience is not allowed for this client." },
        { "resource not allowed", $"grant_type={TokenExchange}&subject_token=x&subject_token_type={IdTokenType}&audience=api://orders&resource=api://payroll", "invalid_target", "The requested audience is not allowed for this client." },
        { "empty audience on exchange", $"grant_type={TokenExchange}&subject_token=x&subject_token_type={IdTokenType}&audience=", "invalid_target", "An empty audience parameter is not allowed." },
        { "empty resource on exchange", $"grant_type={TokenExchange}&subject_token=x&subject_token_type={IdTokenType}&audience=api://orders&resource=", "invalid_target", "An empty resource parameter is not allowed." },
        { "no refresh_token", "grant_type=refresh_token", "invalid_request", "refresh_token is required." },
        { "empty refresh_token", "grant_type=refresh_token&refresh_token=", "invalid_request", "refresh_token is required." },
        { "empty audience on refresh", "grant_type=refresh_token&refresh_token=x&audience=", "invalid_request", "An empty audience parameter is not allowed." },
        { "empty resource on refresh", "grant_type=refresh_token&refresh_token=x&resource=", "invalid_request", "An empty resource parameter is not allowed." },
        { "unknown refresh token", "grant_type=refresh_token&refresh_token=not-a-refresh-token", "invalid_grant", "The refresh token is invalid." },
    };

    [Theory]
    [MemberData(nameof(RequestErrors))]
    public async Task A_refused_request_of_the_web_client_gets_its_exact_error(string @case, string form, string error, string description)
    {
        Assert.NotEmpty(@case);
        using var response = await Host.PostFormAsync("/oauth2/token", Form(form), Basic("web", WebSecret));
        await AssertExactErrorAsync(response, HttpStatusCode.BadRequest, error, description);
    }

    [Theory]
    [InlineData(TokenExchange, "This client may not obtain tokens.")]
    [InlineData("refresh_token", "This client may not refresh tokens.")]
    public async Task A_resource_server_may_use_neither_grant(string grantType, string description)
    {
        using var response = await Host.PostFormAsync(
            "/oauth2/token", [new("grant_type", grantType), new("subject_token", "x"), new("subject_token_type", IdTokenType), new("refresh_token", "x")], Basic("api", ApiSecret));
        await AssertExactErrorAsync(response, HttpStatusCode.BadRequest, "unauthorized_client", description);
    }

    [Fact]
    public async Task A_spa_refresh_without_its_cookie_or_with_the_token_in_the_body_gets_its_exact_error()
    {
        using (var none = await Host.PostFormAsync("/oauth2/token", [new("grant_type", "refresh_token"), new("client_id", "spa")], origin: SpaOrigin))
        {
            await AssertExactErrorAsync(none, HttpStatusCode.BadRequest, "invalid_request", "refresh_token is required.");
        }

        using var body = await Host.PostFormAsync("/oauth2/token", [new("grant_type", "refresh_token"), new("client_id", "spa"), new("refresh_token", "x")], origin: SpaOrigin);
        await AssertExactErrorAsync(body, HttpStatusCode.BadRequest, "invalid_request", "A spa client's refresh token travels only in the __Host-refresh_token cookie.");
    }

    [Fact]
    public async Task An_invalid_or_replayed_id_token_gets_its_exact_error()
    {
        using (var forged = await Host.ExchangeAsync("not.a.jwt"))
        {
            var (status, json) = await ErrorAsync(forged);
            Assert.Equal(HttpStatusCode.BadRequest, status);
            Assert.Equal("invalid_request", json.GetProperty("error").GetString());
            Assert.StartsWith("The subject_token is not a valid ID token: ", json.GetProperty("error_description").GetString(), StringComparison.Ordinal);
        }

        var idToken = Host.Idp.IdToken("response-replay-" + Guid.NewGuid().ToString("N"));
        using (var first = await Host.ExchangeAsync(idToken))
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        }

        using var replay = await Host.ExchangeAsync(idToken);
        await AssertExactErrorAsync(replay, HttpStatusCode.BadRequest, "invalid_request", "The subject_token has already been exchanged.");
    }

    [Fact]
    public async Task A_refused_refresh_target_or_scope_gets_its_exact_error_and_changes_nothing()
    {
        var login = await Host.LoginAsync("response-target-" + Guid.NewGuid().ToString("N"), audience: "api://orders");

        using (var notGranted = await Host.RefreshAsync(login.RefreshToken, extra: [("audience", "api://billing")]))
        {
            await AssertExactErrorAsync(notGranted, HttpStatusCode.BadRequest, "invalid_target", "The requested audience was not granted to this session.");
        }

        using (var widened = await Host.RefreshAsync(login.RefreshToken, extra: [("scope", "orders.read admin")]))
        {
            await AssertExactErrorAsync(widened, HttpStatusCode.BadRequest, "invalid_scope", "The requested scope exceeds the scope originally granted.");
        }

        // Neither refusal rotated the token: the same one still refreshes (it is not reuse).
        using var ok = await Host.RefreshAsync(login.RefreshToken);
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
    }

    [Fact]
    public async Task A_token_for_the_issuer_must_be_asked_for_alone_on_refresh()
    {
        var login = await Host.LoginAsync("response-alone-" + Guid.NewGuid().ToString("N"));
        using var both = await Host.RefreshAsync(login.RefreshToken, extra: [("audience", Issuer), ("resource", "api://orders")]);
        await AssertExactErrorAsync(both, HttpStatusCode.BadRequest, "invalid_target", "The requested audience was not granted to this session.");

        using var mixed = await Host.ExchangeAsync(Host.Idp.IdToken("response-mixed-" + Guid.NewGuid().ToString("N")), extra: [("audience", Issuer), ("audience", "api://orders")]);
        var refreshToken = (await JsonAsync(mixed)).GetProperty("refresh_token").GetString()!;
        using var together = await Host.RefreshAsync(refreshToken, extra: [("resource", "api://orders"), ("audience", Issuer)]);
        await AssertExactErrorAsync(together, HttpStatusCode.BadRequest, "invalid_target", "A token for the token service's own endpoints (audience = its issuer) must be requested alone.");
    }

    [Fact]
    public async Task Token_responses_have_their_members_in_order_with_no_store()
    {
        using var exchange = await Host.ExchangeAsync(Host.Idp.IdToken("response-members-" + Guid.NewGuid().ToString("N")));
        AssertNoStoreJson(exchange, HttpStatusCode.OK);
        var issued = await JsonAsync(exchange);
        Assert.Equal(["access_token", "token_type", "expires_in", "scope", "refresh_token", "issued_token_type"], issued.EnumerateObject().Select(p => p.Name));
        Assert.Equal("Bearer", issued.GetProperty("token_type").GetString());
        Assert.Equal("orders.read orders.write", issued.GetProperty("scope").GetString());
        Assert.Equal(AccessTokenType, issued.GetProperty("issued_token_type").GetString());

        using var refresh = await Host.RefreshAsync(issued.GetProperty("refresh_token").GetString()!);
        AssertNoStoreJson(refresh, HttpStatusCode.OK);
        var refreshed = await JsonAsync(refresh);
        Assert.Equal(["access_token", "token_type", "expires_in", "scope", "refresh_token"], refreshed.EnumerateObject().Select(p => p.Name));

        using var spa = await Host.ExchangeAsync(Host.Idp.IdToken("response-spa-" + Guid.NewGuid().ToString("N")), "spa", null);
        AssertNoStoreJson(spa, HttpStatusCode.OK);
        var spaJson = await JsonAsync(spa);
        Assert.Equal(["access_token", "token_type", "expires_in", "scope", "issued_token_type"], spaJson.EnumerateObject().Select(p => p.Name));
        Assert.StartsWith("__Host-refresh_token=", spa.Headers.GetValues("Set-Cookie").Single(), StringComparison.Ordinal);
    }

    private static List<KeyValuePair<string, string>> Form(string pairs) =>
        pairs.Split('&').Select(p => p.Split('=', 2)).Select(p => new KeyValuePair<string, string>(p[0], p[1])).ToList();

    private static async Task<(HttpStatusCode Status, JsonElement Json)> ErrorAsync(HttpResponseMessage response)
    {
        AssertNoStoreJson(response, response.StatusCode);
        return (response.StatusCode, await JsonAsync(response));
    }

    /// <summary>RFC 6749 §5.2: exactly <c>{"error":…,"error_description":…}</c>, as the JSON writer encodes it.</summary>
    private static async Task AssertExactErrorAsync(HttpResponseMessage response, HttpStatusCode status, string error, string description)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == status, $"Expected {(int)status} but got {(int)response.StatusCode}: {body}");
        AssertNoStoreJson(response, status);
        Assert.Equal($"{{\"error\":\"{JsonEncodedText.Encode(error)}\",\"error_description\":\"{JsonEncodedText.Encode(description)}\"}}", body);
        Assert.Equal(body.Length, response.Content.Headers.ContentLength);
        Assert.False(response.Headers.Contains("WWW-Authenticate"));
    }

    private static void AssertNoStoreJson(HttpResponseMessage response, HttpStatusCode status)
    {
        Assert.Equal(status, response.StatusCode);
        Assert.Equal("no-store", response.Headers.CacheControl?.ToString());
        Assert.Equal("no-cache", string.Join(",", response.Headers.GetValues("Pragma")));
        Assert.Equal("application/json; charset=utf-8", response.Content.Headers.ContentType?.ToString());
    }
}
