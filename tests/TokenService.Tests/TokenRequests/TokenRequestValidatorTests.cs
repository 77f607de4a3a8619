using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;
using TokenService.Clients;
using TokenService.Configuration;
using TokenService.Endpoints;
using TokenService.Protocol;
using TokenService.TokenRequests;

namespace TokenService.Tests.TokenRequests;

/// <summary>
/// <see cref="TokenRequestValidator"/> without a host: what it hands to a grant, and the choices an HTTP test sees
/// only as an error code (the same empty target is invalid_target on an exchange and invalid_request on a refresh).
/// Every error text is pinned over HTTP in <c>TokenEndpointResponseTests</c>.
/// </summary>
public sealed class TokenRequestValidatorTests
{
    private const string Issuer = "https://tokens.test.example";

    private static readonly RegisteredClient Web = new()
    {
        ClientId = "web", Type = ClientType.Confidential, AllowedAudiences = ["api://orders", Issuer, "api://billing"], AllowedScopes = ["orders.read", "orders.write"],
    };

    private static readonly RegisteredClient Spa = new() { ClientId = "spa", Type = ClientType.Spa, AllowedAudiences = ["api://orders"], AllowedScopes = ["orders.read"] };

    private readonly TokenRequestValidator _validator = new(Options.Create(new TokenServiceOptions { Issuer = Issuer }));

    [Theory]
    [InlineData(GrantTypes.TokenExchange, null)]
    [InlineData(GrantTypes.RefreshToken, null)]
    [InlineData(null, OAuthErrors.InvalidRequest)]
    [InlineData("authorization_code", OAuthErrors.UnsupportedGrantType)]
    public void Only_the_two_grants_are_served(string? grantType, string? error)
    {
        Assert.Equal(error, TokenRequestValidator.ValidateGrantType(grantType)?.Code);
    }

    [Fact]
    public void An_exchange_without_scope_or_target_gets_the_clients_scope_and_apis()
    {
        var result = Validate(GrantTypes.TokenExchange, Web, Exchange());
        var exchange = Assert.IsType<ValidatedExchangeRequest>(result.Request);
        Assert.Same(Web, exchange.Client);
        Assert.Equal("id-token", exchange.SubjectToken);
        Assert.Equal("orders.read orders.write", exchange.Scope);
        Assert.Equal(["api://orders", "api://billing"], exchange.Audiences);
    }

    [Fact]
    public void An_exchange_keeps_the_requested_scope_once_each_in_order()
    {
        var form = Exchange();
        form["scope"] = "orders.write  orders.read orders.write";
        var exchange = Assert.IsType<ValidatedExchangeRequest>(Validate(GrantTypes.TokenExchange, Web, form).Request);
        Assert.Equal("orders.write orders.read", exchange.Scope);
    }

    [Fact]
    public void An_empty_target_is_invalid_target_on_an_exchange_and_invalid_request_on_a_refresh()
    {
        var exchange = Exchange();
        exchange["resource"] = new StringValues("");
        Assert.Equal(new OAuthError(OAuthErrors.InvalidTarget, "An empty resource parameter is not allowed."), Validate(GrantTypes.TokenExchange, Web, exchange).Error);

        var refresh = new Dictionary<string, StringValues> { ["refresh_token"] = "rt", ["resource"] = new StringValues("") };
        Assert.Equal(new OAuthError(OAuthErrors.InvalidRequest, "An empty resource parameter is not allowed."), Validate(GrantTypes.RefreshToken, Web, refresh).Error);
    }

    [Fact]
    public void A_refresh_passes_on_scope_and_targets_as_asked_for_the_session_to_judge()
    {
        var form = new Dictionary<string, StringValues> { ["refresh_token"] = "rt", ["scope"] = "admin", ["audience"] = "api://payroll" };
        var refresh = Assert.IsType<ValidatedRefreshRequest>(Validate(GrantTypes.RefreshToken, Web, form).Request);
        Assert.Equal("rt", refresh.RefreshToken);
        Assert.Equal("admin", refresh.Scope);
        Assert.Equal(["api://payroll"], refresh.RequestedAudiences);
    }

    [Fact]
    public void A_spa_refresh_reads_the_token_from_its_cookie_only()
    {
        var http = new DefaultHttpContext();
        http.Request.Headers.Cookie = RefreshTokenCookie.Name + "=from-cookie";
        var refresh = Assert.IsType<ValidatedRefreshRequest>(_validator.Validate(GrantTypes.RefreshToken, new(new Dictionary<string, StringValues>(), Spa), http.Request).Request);
        Assert.Equal("from-cookie", refresh.RefreshToken);
        Assert.Null(refresh.Scope);
        Assert.Empty(refresh.RequestedAudiences);

        var inBody = _validator.Validate(GrantTypes.RefreshToken, new(new Dictionary<string, StringValues> { ["refresh_token"] = "rt" }, Spa), http.Request);
        Assert.Equal(OAuthErrors.InvalidRequest, inBody.Error?.Code);
    }

    [Theory]
    [InlineData(ClientType.ResourceServer, GrantTypes.TokenExchange)]
    [InlineData(ClientType.Admin, GrantTypes.RefreshToken)]
    public void Only_spa_and_confidential_clients_may_use_a_grant(ClientType type, string grantType)
    {
        var client = new RegisteredClient { ClientId = "other", Type = type };
        Assert.Equal(OAuthErrors.UnauthorizedClient, Validate(grantType, client, Exchange()).Error?.Code);
    }

    private static Dictionary<string, StringValues> Exchange() => new()
    {
        ["subject_token"] = "id-token",
        ["subject_token_type"] = TokenTypes.IdToken,
    };

    private TokenRequestValidationResult Validate(string grantType, RegisteredClient client, Dictionary<string, StringValues> form) =>
        _validator.Validate(grantType, new ClientRequestReader.ClientRequest(form, client), new DefaultHttpContext().Request);
}
