using System.Diagnostics;
using TokenService.Tests.Tables;

namespace TokenService.Tests.Functions;

/// <summary>
/// The folder <c>scripts/func-start.sh --prepare-only</c> builds (the Release app as Core Tools runs it and as a
/// deployment ships it). scripts/test.sh builds it before the tests (and says so with TOKEN_FUNCTIONS_APP_PREPARED=1);
/// run alone, the fixture builds it.
/// </summary>
public sealed class FunctionsAppOutput : IAsyncLifetime
{
    public string Path { get; } = System.IO.Path.Combine(AzuriteFixture.FindRepositoryRoot(), "artifacts", "functions-app");

    public async Task InitializeAsync()
    {
        // scripts/test.sh has just built the folder from the current sources; run alone, a folder left over from an
        // earlier build could be stale, so build it again.
        if (Environment.GetEnvironmentVariable("TOKEN_FUNCTIONS_APP_PREPARED") == "1" && File.Exists(System.IO.Path.Combine(Path, "functions.metadata")))
        {
            return;
        }

        var root = AzuriteFixture.FindRepositoryRoot();
        using var process = Process.Start(new ProcessStartInfo("bash", ["scripts/func-start.sh", "--prepare-only", "--output", Path])
        {
            WorkingDirectory = root,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        })!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"scripts/func-start.sh --prepare-only failed ({process.ExitCode}): {await stdout} {await stderr}");
        }
    }

    public Task DisposeAsync() => Task.CompletedTask;
}

[CollectionDefinition(Name)]
public sealed class FunctionsAppOutputCollection : ICollectionFixture<FunctionsAppOutput>
{
    public const string Name = "Functions app output";
}
