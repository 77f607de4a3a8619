using Microsoft.Azure.Functions.Worker.Builder;
using Microsoft.Extensions.Hosting;
using TokenFunctions;

// Azure Functions isolated worker with ASP.NET Core integration: the same core services as the standalone
// host (functions/TokenService.Server/TokenServiceHost.cs); only the triggers differ.
var builder = FunctionsApplication.CreateBuilder(args);
builder.ConfigureFunctionsWebApplication();
builder.Services.AddTokenFunctions(builder.Configuration, builder.Environment);
builder.Build().Run();
