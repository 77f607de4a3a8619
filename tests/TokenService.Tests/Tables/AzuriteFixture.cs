using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Azure.Data.Tables;
using TokenService.Azure.Tables;

namespace TokenService.Tests.Tables;

/// <summary>
/// Azurite's Table service for the tests: <c>AZURITE_TABLE_ENDPOINT</c> when set, otherwise
/// <c>node_modules/.bin/azurite-table</c> started on a free loopback port with in-memory persistence and stopped
/// afterwards. Missing Azurite fails loudly: run <c>npm ci</c> at the repository root.
/// </summary>
public sealed class AzuriteFixture : IAsyncLifetime
{
    private const string AccountKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
    private Process? _process;

    public string ConnectionString { get; private set; } = string.Empty;

    public async Task InitializeAsync()
    {
        var endpoint = Environment.GetEnvironmentVariable("AZURITE_TABLE_ENDPOINT");
        if (string.IsNullOrEmpty(endpoint))
        {
            var root = FindRepositoryRoot();
            var binary = Path.Combine(root, "node_modules", ".bin", "azurite-table");
            if (!File.Exists(binary))
            {
                throw new InvalidOperationException($"Azurite is not installed ({binary} is missing): run `npm ci` at the repository root, or set AZURITE_TABLE_ENDPOINT.");
            }

            var port = FreePort();
            _process = Process.Start(new ProcessStartInfo(binary)
            {
                ArgumentList = { "--tableHost", "127.0.0.1", "--tablePort", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--inMemoryPersistence", "--skipApiVersionCheck", "--disableProductStyleUrl", "--disableTelemetry", "--silent" },
                WorkingDirectory = Path.GetTempPath(),
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            })!;
            _process.OutputDataReceived += (_, _) => { };
            _process.ErrorDataReceived += (_, _) => { };
            _process.BeginOutputReadLine();
            _process.BeginErrorReadLine();
            endpoint = $"http://127.0.0.1:{port}/devstoreaccount1";
            await WaitUntilListeningAsync(port);
        }

        ConnectionString = $"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={AccountKey};TableEndpoint={endpoint};";
    }

    /// <summary>An SDK client on the product's retry settings, or on <paramref name="options"/> (fault injection, counting).</summary>
    public TableServiceClient CreateClient(TableClientOptions? options = null) => new(ConnectionString, options ?? TableStorage.DefaultOptions());

    public Task DisposeAsync()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit(5000);
        }

        _process?.Dispose();
        return Task.CompletedTask;
    }

    private async Task WaitUntilListeningAsync(int port)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline)
        {
            if (_process!.HasExited)
            {
                throw new InvalidOperationException($"azurite-table exited with code {_process.ExitCode} before listening.");
            }

            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync(IPAddress.Loopback, port);
                return;
            }
            catch (SocketException)
            {
                await Task.Delay(100);
            }
        }

        throw new TimeoutException("azurite-table did not start listening within 30 s.");
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    internal static string FindRepositoryRoot()
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
}

[CollectionDefinition(Name)]
public sealed class AzuriteCollection : ICollectionFixture<AzuriteFixture>
{
    public const string Name = "Azurite";
}
