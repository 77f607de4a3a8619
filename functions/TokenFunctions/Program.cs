using Microsoft.Azure.Functions.Worker.Builder;
using Microsoft.Extensions.Hosting;
using TokenFunctions;
using TokenService.Hosting;

// Azure Functions isolated worker with ASP.NET Core integration: the same core services as the standalone
// host (functions/TokenService.Server/TokenServiceHost.cs); only the triggers differ. A bad setting ends the
// worker with exit code 1 and one line per bad setting on stderr, which the Functions host logs.
return await StartupValidation.RunAsync(() =>
{
    var builder = FunctionsApplication.CreateBuilder(args);
    builder.ConfigureFunctionsWebApplication();
    builder.Services.AddTokenFunctions(builder.Configuration, builder.Environment);
    return builder.Build();
}, Console.Error);
