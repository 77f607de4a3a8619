using Microsoft.Extensions.Primitives;
using TokenService.Clients;
using TokenService.TokenRequests;

namespace TokenService.Tests.TokenRequests;

/// <summary>
/// Each rule of <see cref="AudiencePolicy"/> on its own, with no host: reading the <c>audience</c> and <c>resource</c>
/// parameters, the audiences of an exchange, of one token of a session, and of a refresh (RFC 8693 §2.1, RFC 8707 §2.2).
/// </summary>
public sealed class AudiencePolicyTests
{
    private const string Issuer = "https://tokens.test.example";
    private const string NotGranted = "The requested audience was not granted to this session.";
    private const string IssuerAlone = "A token for the token service's own endpoints (audience = its issuer) must be requested alone.";
    private const string NotAllowed = "The requested audience is not allowed for this client.";

    private static RegisteredClient Client(params string[] allowedAudiences) =>
        new() { ClientId = "web", Type = ClientType.Confidential, AllowedAudiences = allowedAudiences };

    // ---- ReadRequested -------------------------------------------------------------------------

    [Fact]
    public void No_audience_or_resource_is_an_empty_request()
    {
        var read = AudiencePolicy.ReadRequested(StringValues.Empty, default);
        Assert.True(read.IsAllowed);
        Assert.Empty(read.Audiences);
    }

    [Fact]
    public void Audience_values_come_before_resource_values_each_once_in_the_order_given()
    {
        var read = AudiencePolicy.ReadRequested(new StringValues(["api://b", "api://a", "api://b"]), new StringValues(["api://c", "api://a"]));
        Assert.True(read.IsAllowed);
        Assert.Equal(["api://b", "api://a", "api://c"], read.Audiences);
    }

    [Theory]
    [InlineData("")]
    [InlineData(null)]
    public void An_empty_audience_value_is_refused_by_name(string? empty)
    {
        var read = AudiencePolicy.ReadRequested(new StringValues(["api://orders", empty]), new StringValues(""));
        Assert.False(read.IsAllowed);
        Assert.Equal("An empty audience parameter is not allowed.", read.Error);
        Assert.Empty(read.Audiences);
    }

    [Fact]
    public void An_empty_resource_value_is_refused_by_name()
    {
        var read = AudiencePolicy.ReadRequested(new StringValues("api://orders"), new StringValues(["api://billing", ""]));
        Assert.False(read.IsAllowed);
        Assert.Equal("An empty resource parameter is not allowed.", read.Error);
    }

    // ---- ForExchange ---------------------------------------------------------------------------

    [Fact]
    public void An_exchange_without_a_target_gets_every_api_of_the_client_but_never_the_issuer()
    {
        var decision = AudiencePolicy.ForExchange(Client("api://orders", Issuer, "api://billing"), [], Issuer);
        Assert.True(decision.IsAllowed);
        Assert.Equal(["api://orders", "api://billing"], decision.Audiences);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void An_exchange_without_a_target_for_a_client_of_no_api_gets_the_client_id(bool issuerAllowed)
    {
        var decision = AudiencePolicy.ForExchange(issuerAllowed ? Client(Issuer) : Client(), [], Issuer);
        Assert.True(decision.IsAllowed);
        Assert.Equal(["web"], decision.Audiences);
    }

    [Fact]
    public void An_exchange_gets_exactly_the_allowed_targets_it_asks_for_the_issuer_included()
    {
        var decision = AudiencePolicy.ForExchange(Client("api://orders", "api://billing", Issuer), [Issuer, "api://billing"], Issuer);
        Assert.True(decision.IsAllowed);
        Assert.Equal([Issuer, "api://billing"], decision.Audiences);
    }

    [Theory]
    [InlineData("api://payroll")]
    [InlineData(Issuer)]
    public void An_exchange_asking_for_a_target_the_client_is_not_allowed_is_refused(string target)
    {
        var decision = AudiencePolicy.ForExchange(Client("api://orders"), ["api://orders", target], Issuer);
        Assert.False(decision.IsAllowed);
        Assert.Equal(NotAllowed, decision.Error);
        Assert.Empty(decision.Audiences);
    }

    // ---- ForToken ------------------------------------------------------------------------------

    [Fact]
    public void A_token_of_a_session_granted_apis_and_the_issuer_is_for_the_apis_only()
    {
        Assert.Equal(["api://orders", "api://billing"], AudiencePolicy.ForToken(["api://orders", Issuer, "api://billing"], Issuer));
    }

    [Fact]
    public void A_token_of_a_session_granted_the_issuer_alone_is_for_the_issuer()
    {
        Assert.Equal([Issuer], AudiencePolicy.ForToken([Issuer], Issuer));
    }

    [Fact]
    public void A_token_of_a_session_granted_apis_only_is_for_all_of_them()
    {
        Assert.Equal(["api://orders", "api://billing"], AudiencePolicy.ForToken(["api://orders", "api://billing"], Issuer));
    }

    // ---- ForRefresh ----------------------------------------------------------------------------

    [Fact]
    public void A_refresh_without_a_target_gets_the_default_token_audiences_of_the_session()
    {
        var decision = AudiencePolicy.ForRefresh(["api://orders", Issuer], [], Issuer);
        Assert.True(decision.IsAllowed);
        Assert.Equal(["api://orders"], decision.Audiences);
    }

    [Fact]
    public void A_refresh_may_narrow_to_granted_apis()
    {
        var decision = AudiencePolicy.ForRefresh(["api://orders", "api://billing", Issuer], ["api://billing"], Issuer);
        Assert.True(decision.IsAllowed);
        Assert.Equal(["api://billing"], decision.Audiences);
    }

    [Fact]
    public void A_refresh_may_ask_for_the_issuer_alone_when_granted()
    {
        var decision = AudiencePolicy.ForRefresh(["api://orders", Issuer], [Issuer], Issuer);
        Assert.True(decision.IsAllowed);
        Assert.Equal([Issuer], decision.Audiences);
    }

    [Theory]
    [InlineData("api://billing")]
    [InlineData(Issuer)]
    public void A_refresh_asking_for_a_target_not_granted_to_the_session_is_refused(string target)
    {
        var decision = AudiencePolicy.ForRefresh(["api://orders"], [target], Issuer);
        Assert.False(decision.IsAllowed);
        Assert.Equal(NotGranted, decision.Error);
        Assert.Empty(decision.Audiences);
    }

    [Fact]
    public void A_refresh_asking_for_the_issuer_with_an_api_is_refused_even_when_both_are_granted()
    {
        var decision = AudiencePolicy.ForRefresh(["api://orders", Issuer], ["api://orders", Issuer], Issuer);
        Assert.False(decision.IsAllowed);
        Assert.Equal(IssuerAlone, decision.Error);
    }

    [Fact]
    public void A_target_not_granted_is_reported_before_the_issuer_not_being_alone()
    {
        var decision = AudiencePolicy.ForRefresh(["api://orders", Issuer], [Issuer, "api://billing"], Issuer);
        Assert.Equal(NotGranted, decision.Error);
    }
}
