using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;

namespace TokenService.Hosting;

/// <summary>
/// Lets an Azure Functions HTTP trigger (ASP.NET Core integration) answer through the same endpoint method the
/// standalone host maps: the endpoint writes the response to the request's <see cref="HttpContext"/>.
/// </summary>
public sealed class EndpointActionResult(Func<HttpContext, Task> endpoint) : IActionResult
{
    public Task ExecuteResultAsync(ActionContext context) => endpoint(context.HttpContext);
}
