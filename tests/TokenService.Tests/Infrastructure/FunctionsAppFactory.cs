using Microsoft.Azure.Functions.Worker.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TokenFunctions;

namespace TokenService.Tests.Infrastructure;

/// <summary>
/// Builds the Functions worker the way functions/TokenFunctions/Program.cs does (FunctionsApplication builder,
/// ASP.NET Core integration, <see cref="TokenFunctionsServices.AddTokenFunctions"/>) without running it: the
/// worker's gRPC channel to a Functions host is only opened by Run, and no host can run here.
/// </summary>
public static class FunctionsAppFactory
{
    public static IHost Build(string environment, IDictionary<string, string?> settings, Action<IServiceCollection>? services = null)
    {
        var builder = FunctionsApplication.CreateBuilder([]);
        // The worker takes its environment from AZURE_FUNCTIONS_ENVIRONMENT, a process-wide variable that parallel
        // tests cannot each set: give the builder the name directly, before anything reads it.
        builder.Environment.EnvironmentName = environment;
        builder.ConfigureFunctionsWebApplication();
        builder.Configuration.AddInMemoryCollection(settings);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        services?.Invoke(builder.Services); // test doubles first: the app registers its defaults with TryAdd
        builder.Services.AddTokenFunctions(builder.Configuration, builder.Environment);
        return builder.Build();
    }

    /// <summary>Runs the options validation that host start-up runs (ValidateOnStart), as the worker would.</summary>
    public static Task ValidateStartupAsync(IHost host)
    {
        host.Services.GetService<IStartupValidator>()?.Validate();
        return Task.CompletedTask;
    }
}
