using System.Diagnostics;
using TokenService.Tests.Tables;

namespace TokenService.Tests.Infrastructure;

/// <summary>The built hosts started as processes, as an operator or the Functions host starts them.</summary>
public static class BuiltHosts
{
    /// <summary>The standalone host's dll of the configuration these tests were built in.</summary>
    public static string ServerDll { get; } = Path.Combine(AzuriteFixture.FindRepositoryRoot(), "functions", "TokenService.Server", "bin",
#if DEBUG
        "Debug",
#else
        "Release",
#endif
        "net10.0", "TokenService.Server.dll");

    /// <summary>Runs a process that is expected to exit by itself; returns its exit code and its stderr and stdout.</summary>
    public static async Task<(int Exit, string Output)> RunToExitAsync(ProcessStartInfo start)
    {
        var (exit, stderr, stdout) = await RunToExitWithStreamsAsync(start);
        return (exit, stderr + stdout);
    }

    /// <summary>Like <see cref="RunToExitAsync"/>, with stderr and stdout apart.</summary>
    public static async Task<(int Exit, string Stderr, string Stdout)> RunToExitWithStreamsAsync(ProcessStartInfo start)
    {
        start.RedirectStandardError = true;
        start.RedirectStandardOutput = true;
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60)); // a hang guard, not pacing
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new InvalidOperationException($"{start.FileName} {string.Join(' ', start.ArgumentList)} did not exit: " + await stdout);
        }

        return (process.ExitCode, await stderr, await stdout);
    }

    /// <summary>
    /// Starts a process that keeps running, reads its stdout until a line satisfies <paramref name="until"/>, then
    /// ends it; returns that line (null if the process ended first) and everything read.
    /// </summary>
    public static async Task<(string? Line, string Output)> RunUntilLineAsync(ProcessStartInfo start, Func<string, bool> until)
    {
        start.RedirectStandardError = true;
        start.RedirectStandardOutput = true;
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var read = new System.Text.StringBuilder();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60)); // a hang guard, not pacing
        try
        {
            while (await process.StandardOutput.ReadLineAsync(timeout.Token) is { } line)
            {
                read.AppendLine(line);
                if (until(line))
                {
                    return (line, read.ToString());
                }
            }

            return (null, read + await stderr);
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync(CancellationToken.None);
            }
        }
    }
}
