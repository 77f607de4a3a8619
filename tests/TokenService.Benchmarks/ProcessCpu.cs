using System.Globalization;

namespace TokenService.Benchmarks;

/// <summary>
/// CPU time of named processes (<c>host=PID,azurite=PID</c>) from <c>/proc/PID/stat</c> (utime + stime of all its
/// threads, in USER_HZ ticks of 10 ms on Linux): read around one measured pass, it counts that pass alone, whatever else
/// runs on the machine.
/// </summary>
internal sealed class ProcessCpu(IReadOnlyList<(string Name, int Pid)> processes)
{
    /// <summary>USER_HZ: 100 on every Linux architecture .NET runs on (getconf CLK_TCK).</summary>
    private const double TicksPerSecond = 100;

    public static readonly ProcessCpu None = new([]);

    public static ProcessCpu Parse(string? option) => option is null
        ? None
        : new([.. option.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(p => p.Split('=')).Select(p => (p[0], int.Parse(p[1], CultureInfo.InvariantCulture)))]);

    public long[] Ticks() => [.. processes.Select(p => TicksOf(p.Pid))];

    /// <summary>" host 1.234 ms/req | azurite 0.456 ms/req |" since <paramref name="before"/>, over <paramref name="requests"/>.</summary>
    public string PerRequestCells(long[] before, int requests)
    {
        var after = Ticks();
        return string.Concat(processes.Select((p, i) => string.Create(CultureInfo.InvariantCulture, $" {p.Name} {(after[i] - before[i]) * 1000 / TicksPerSecond / requests:F3} ms/req |")));
    }

    private static long TicksOf(int pid)
    {
        // Fields after the command name, which is in parentheses and may hold spaces: state is field 3, utime 14, stime 15.
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
    }
}
