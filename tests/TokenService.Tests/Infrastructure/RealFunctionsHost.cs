using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace TokenService.Tests.Infrastructure;

/// <summary>
/// The published Functions app (<c>artifacts/functions-app</c>, built by <c>scripts/func-start.sh --prepare-only</c>)
/// under a real Azure Functions host, as a process: <c>func start --no-build --port P</c> when Core Tools is on PATH,
/// else <c>../shared/functions-host/run.sh RUN_FOLDER P</c> beside the repository root. Each instance has its own copy
/// of the run folder (its <c>local.settings.json</c> Values are the test's settings, which both launchers turn into
/// environment variables), its own Azurite (blob and queue for the host's timers and secrets, table for the app's
/// stores) on free ports, a free port of its own, and its stdout/stderr in a log file whose tail failing tests print.
/// </summary>
public sealed class RealFunctionsHost : IAsyncDisposable
{
    private const string AccountKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    // Start-up of host and worker takes 30-90 s on the loaded 2-core machine; this only guards against a hang.
    private static readonly TimeSpan StartGuard = TimeSpan.FromMinutes(5);

    private static readonly Lazy<(string? Launcher, string Reason)> Launch = new(FindLauncher);

    private readonly Process _azurite;
    private readonly Process _host;
    private readonly LogFile _log;

    private RealFunctionsHost(string folder, Process azurite, Process host, LogFile log, string logPath, Uri baseAddress)
    {
        Folder = folder;
        _azurite = azurite;
        _host = host;
        _log = log;
        LogPath = logPath;
        BaseAddress = baseAddress;
    }

    /// <summary>The host whose client sent the last request: the one whose log tail a failing test prints.</summary>
    public static RealFunctionsHost? LastUsed { get; set; }

    /// <summary>The command that runs the host (<c>func</c> or run.sh), or null when neither exists.</summary>
    public static string? Launcher => Launch.Value.Launcher;

    /// <summary>Why the tier is skipped (null when it runs): one line, shown on every skipped test.</summary>
    public static string? SkipReason => Launch.Value.Launcher is null ? Launch.Value.Reason : null;

    public Uri BaseAddress { get; }

    public string Folder { get; }

    public string LogPath { get; }

    /// <summary>The folder holding TokenFunctions.sln above the test's output folder.</summary>
    public static string RepositoryRoot { get; } = FindRepositoryRoot();

    /// <summary>The run folder every instance copies.</summary>
    public static string RunFolder => Path.Combine(RepositoryRoot, "artifacts", "functions-app");

    /// <summary>
    /// Starts Azurite and the host with <paramref name="values"/> as the app's settings (environment-variable names,
    /// <c>__</c> for <c>:</c>) plus <c>AzureWebJobsStorage</c> and <c>Storage__TableConnectionString</c> on the
    /// instance's Azurite; returns once <c>/healthz</c> answers 200.
    /// </summary>
    public static async Task<RealFunctionsHost> StartAsync(IDictionary<string, string?> values)
    {
        var launcher = Launcher ?? throw new InvalidOperationException(SkipReason);
        if (!File.Exists(Path.Combine(RunFolder, "functions.metadata")))
        {
            throw new InvalidOperationException($"{RunFolder} is not built: run `bash scripts/func-start.sh --prepare-only --output artifacts/functions-app`.");
        }

        var folder = Path.Combine(Path.GetTempPath(), "ts-func-" + Guid.NewGuid().ToString("N"));
        CopyDirectory(RunFolder, Path.Combine(folder, "app"));
        var logPath = Path.Combine(folder, "host.log");
        var log = new LogFile(logPath);

        var (blob, queue, table) = (FreePort(), FreePort(), FreePort());
        var azurite = StartProcess(
            new ProcessStartInfo(Path.Combine(RepositoryRoot, "node_modules", ".bin", "azurite"))
            {
                ArgumentList =
                {
                    "--blobHost", "127.0.0.1", "--blobPort", Port(blob), "--queueHost", "127.0.0.1", "--queuePort", Port(queue),
                    "--tableHost", "127.0.0.1", "--tablePort", Port(table), "--inMemoryPersistence", "--skipApiVersionCheck",
                    "--disableProductStyleUrl", "--disableTelemetry", "--silent",
                },
                WorkingDirectory = folder,
            },
            line => { });
        var storage = $"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={AccountKey};" +
            $"BlobEndpoint=http://127.0.0.1:{blob}/devstoreaccount1;QueueEndpoint=http://127.0.0.1:{queue}/devstoreaccount1;TableEndpoint=http://127.0.0.1:{table}/devstoreaccount1;";

        var settings = new Dictionary<string, string?>(values, StringComparer.Ordinal)
        {
            ["AzureWebJobsStorage"] = storage,
            ["Storage__TableConnectionString"] = storage,
            ["FUNCTIONS_WORKER_RUNTIME"] = "dotnet-isolated",
        };
        await File.WriteAllTextAsync(Path.Combine(folder, "app", "local.settings.json"), JsonSerializer.Serialize(new { IsEncrypted = false, Values = settings }));

        var port = FreePort();
        var start = launcher == "func"
            ? new ProcessStartInfo("func") { ArgumentList = { "start", "--no-build", "--port", Port(port) } }
            : new ProcessStartInfo("bash") { ArgumentList = { launcher, Path.Combine(folder, "app"), Port(port) } };
        start.WorkingDirectory = Path.Combine(folder, "app");
        Process? host = null;
        RealFunctionsHost? instance = null;
        try
        {
            await WaitUntilListeningAsync(azurite, blob, queue, table);
            host = StartProcess(start, log.Write);
            instance = new RealFunctionsHost(folder, azurite, host, log, logPath, new Uri($"http://127.0.0.1:{port}/"));
            await instance.WaitUntilHealthyAsync();
            return instance;
        }
        catch
        {
            if (instance is not null)
            {
                await instance.DisposeAsync();
            }
            else
            {
                Stop(host);
                Stop(azurite);
                log.Dispose();
            }

            throw;
        }
    }

    /// <summary>The last <paramref name="lines"/> lines of the host's stdout and stderr.</summary>
    public string Tail(int lines = 60)
    {
        try
        {
            using var stream = new FileStream(LogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var reader = new StreamReader(stream);
            var all = reader.ReadToEnd().Split('\n');
            return $"--- last {Math.Min(lines, all.Length)} lines of the Functions host's log ({LogPath}) ---\n" + string.Join('\n', all.TakeLast(lines));
        }
        catch (IOException e)
        {
            return "(the Functions host's log cannot be read: " + e.Message + ")";
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (ReferenceEquals(LastUsed, this))
        {
            LastUsed = null;
        }

        Stop(_host);
        Stop(_azurite);
        _log.Dispose();

        try
        {
            Directory.Delete(Folder, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }

        await Task.CompletedTask;
    }

    private async Task WaitUntilHealthyAsync()
    {
        using var client = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
        var deadline = DateTime.UtcNow + StartGuard;
        var last = "no answer yet";
        while (DateTime.UtcNow < deadline)
        {
            if (_host.HasExited)
            {
                throw new InvalidOperationException($"The Functions host exited with code {_host.ExitCode} before /healthz answered.\n{Tail()}");
            }

            try
            {
                using var response = await client.GetAsync("/healthz");
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    return;
                }

                last = $"{(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}";
            }
            catch (HttpRequestException e)
            {
                last = e.Message;
            }
            catch (TaskCanceledException)
            {
                last = "no answer within 30 s";
            }

            await Task.Delay(500);
        }

        throw new TimeoutException($"The Functions host did not answer /healthz with 200 within {StartGuard.TotalMinutes} minutes (last: {last}).\n{Tail()}");
    }

    private static string FindRepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "TokenFunctions.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("Cannot find the repository root (TokenFunctions.sln) above " + AppContext.BaseDirectory);
    }

    private static (string? Launcher, string Reason) FindLauncher()
    {
        var path = Environment.GetEnvironmentVariable("PATH") ?? string.Empty;
        if (path.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries).Any(dir => File.Exists(Path.Combine(dir, "func"))))
        {
            return ("func", string.Empty);
        }

        // ../shared beside the repository root: where a CI clone and every worktree find the host built for tests.
        var runSh = Path.GetFullPath(Path.Combine(RepositoryRoot, "..", "shared", "functions-host", "run.sh"));
        return File.Exists(runSh)
            ? (runSh, string.Empty)
            : (null, $"Real Functions host tier skipped: neither `func` (Azure Functions Core Tools v4) is on PATH nor {runSh} exists.");
    }

    private static Process StartProcess(ProcessStartInfo start, Action<string> onLine)
    {
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        start.UseShellExecute = false;
        // Some sandboxes set CONTAINER_NAME, which makes the host believe it runs in a Linux Consumption container.
        start.Environment.Remove("CONTAINER_NAME");
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        var process = Process.Start(start) ?? throw new InvalidOperationException("Cannot start " + start.FileName);
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                onLine(e.Data);
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                onLine(e.Data);
            }
        };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    private static void Stop(Process? process)
    {
        if (process is null)
        {
            return;
        }

        try
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                process.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException)
        {
        }

        process.Dispose();
    }

    private static async Task WaitUntilListeningAsync(Process azurite, params int[] ports)
    {
        var deadline = DateTime.UtcNow.AddMinutes(3); // a hang guard: on the loaded shared machine Azurite took over a minute
        foreach (var port in ports)
        {
            while (true)
            {
                if (azurite.HasExited)
                {
                    throw new InvalidOperationException($"Azurite exited with code {azurite.ExitCode} before listening (run `npm ci` at the repository root).");
                }

                try
                {
                    using var client = new TcpClient();
                    await client.ConnectAsync(IPAddress.Loopback, port);
                    break;
                }
                catch (SocketException) when (DateTime.UtcNow < deadline)
                {
                    await Task.Delay(100);
                }
                catch (SocketException e)
                {
                    throw new TimeoutException($"Azurite did not listen on 127.0.0.1:{port} within 3 minutes.", e);
                }
            }
        }
    }

    private static void CopyDirectory(string source, string target)
    {
        Directory.CreateDirectory(target);
        foreach (var dir in Directory.EnumerateDirectories(source, "*", SearchOption.AllDirectories))
        {
            Directory.CreateDirectory(Path.Combine(target, Path.GetRelativePath(source, dir)));
        }

        foreach (var file in Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories))
        {
            File.Copy(file, Path.Combine(target, Path.GetRelativePath(source, file)));
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static string Port(int port) => port.ToString(CultureInfo.InvariantCulture);

    /// <summary>The host's output lines, written as they come from two reader threads; none after disposal.</summary>
    private sealed class LogFile(string path) : IDisposable
    {
        private readonly StreamWriter _writer = new(path, append: false, Encoding.UTF8) { AutoFlush = true };
        private bool _disposed;

        public void Write(string line)
        {
            lock (_writer)
            {
                if (!_disposed)
                {
                    _writer.WriteLine(line);
                }
            }
        }

        public void Dispose()
        {
            lock (_writer)
            {
                _disposed = true;
                _writer.Dispose();
            }
        }
    }
}
