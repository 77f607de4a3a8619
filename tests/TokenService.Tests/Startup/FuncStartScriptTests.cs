using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using TokenService.Tests.Infrastructure;
using TokenService.Tests.Tables;

namespace TokenService.Tests.Startup;

/// <summary>
/// scripts/func-start.sh on a port already in use (often a token service already running on 7071): one line and
/// exit 1 at once, before the minute-long publish and before the host fails on the port with a stack trace.
/// </summary>
public sealed class FuncStartScriptTests
{
    [Fact]
    public async Task A_port_in_use_exits_1_at_once_with_one_line_naming_the_port_and_how_to_choose_another()
    {
        using var occupied = new TcpListener(IPAddress.Loopback, 0);
        occupied.Start();
        var port = ((IPEndPoint)occupied.LocalEndpoint).Port;
        var root = AzuriteFixture.FindRepositoryRoot();
        var start = new ProcessStartInfo("bash", [Path.Combine(root, "scripts", "func-start.sh"), "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture)])
        {
            WorkingDirectory = Path.GetTempPath(),
        };
        var (exit, stderr, stdout) = await BuiltHosts.RunToExitWithStreamsAsync(start);
        Assert.Equal(1, exit);
        var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        Assert.Contains($"127.0.0.1:{port} is already in use", line, StringComparison.Ordinal);
        Assert.Contains("--port N", line, StringComparison.Ordinal);
        Assert.DoesNotContain("dotnet publish", stdout, StringComparison.Ordinal);
    }
}
