using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Routing;
using TokenService.Hosting;

namespace TokenService.Tests.Http;

public sealed class EndpointActionResultTests
{
    [Fact]
    public async Task The_functions_adapter_runs_the_shared_endpoint_on_the_request_context()
    {
        var context = new DefaultHttpContext();
        context.Response.Body = new MemoryStream();
        HttpContext? seen = null;
        var result = new EndpointActionResult(ctx =>
        {
            seen = ctx;
            ctx.Response.StatusCode = 418;
            return ctx.Response.WriteAsync("written by the endpoint");
        });

        await result.ExecuteResultAsync(new ActionContext(context, new RouteData(), new Microsoft.AspNetCore.Mvc.Abstractions.ActionDescriptor()));

        Assert.Same(context, seen);
        Assert.Equal(418, context.Response.StatusCode);
        context.Response.Body.Position = 0;
        Assert.Equal("written by the endpoint", await new StreamReader(context.Response.Body).ReadToEndAsync());
    }
}
