using System.Net;
using TokenService.Hosting;
using TokenService.Tests.Infrastructure;

namespace TokenService.Tests.Http;

/// <summary>
/// RFC 9110 §15.5.6: a 405 carries an Allow header listing the methods the resource supports. The routes that also
/// answer HEAD (discovery, the JWKS, /healthz) said only "GET" (RFC 9110 §9.3.2: a GET resource answers HEAD too). Standalone host: it routes every
/// method to the endpoint, which answers the 405 itself.
/// </summary>
public sealed class AllowHeaderTests(HostFixture fixture) : IClassFixture<HostFixture>
{
    public static TheoryData<string> RoutesServingHead() =>
        [.. TokenServiceRoutes.All.Where(r => r.Methods.Contains("HEAD") && !r.Template.StartsWith("dev-idp", StringComparison.Ordinal)).Select(r => r.Template)];

    [Theory]
    [MemberData(nameof(RoutesServingHead))]
    public async Task A_wrong_method_is_told_every_method_the_route_serves_and_each_of_them_is_served(string template)
    {
        var route = TokenServiceRoutes.All.Single(r => r.Template == template);
        using var wrong = await fixture.Host.Client.SendAsync(new HttpRequestMessage(HttpMethod.Delete, "/" + template));
        Assert.Equal(HttpStatusCode.MethodNotAllowed, wrong.StatusCode);
        Assert.Equal(route.Methods.Order(StringComparer.Ordinal), wrong.Content.Headers.Allow.Order(StringComparer.Ordinal));

        foreach (var method in wrong.Content.Headers.Allow)
        {
            using var allowed = await fixture.Host.Client.SendAsync(new HttpRequestMessage(new HttpMethod(method), "/" + template));
            Assert.NotEqual(HttpStatusCode.MethodNotAllowed, allowed.StatusCode);
        }
    }
}
