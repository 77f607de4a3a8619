using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using TokenService.Tests.Infrastructure;
using TokenService.Tests.Tables;

namespace TokenService.Tests.Startup;

/// <summary>samples/spa/serve.mjs on a port already in use: exit 1 and one line, not an EADDRINUSE trace.</summary>
public sealed class SpaSampleServerTests
{
    [Fact]
    public async Task A_port_in_use_exits_1_with_one_line_naming_the_port_and_how_to_choose_another()
    {
        using var occupied = new TcpListener(IPAddress.Loopback, 0);
        occupied.Start();
        var port = ((IPEndPoint)occupied.LocalEndpoint).Port;
        var script = Path.Combine(AzuriteFixture.FindRepositoryRoot(), "samples", "spa", "serve.mjs");
        var start = new ProcessStartInfo("node", [script]) { WorkingDirectory = Path.GetTempPath() };
        start.Environment["PORT"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        start.Environment["HOST"] = "127.0.0.1";
        var (exit, stderr, _) = await BuiltHosts.RunToExitWithStreamsAsync(start);
        Assert.Equal(1, exit);
        var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        Assert.Contains($"127.0.0.1:{port} is already in use", line, StringComparison.Ordinal);
        Assert.Contains("PORT=", line, StringComparison.Ordinal);
    }
}
