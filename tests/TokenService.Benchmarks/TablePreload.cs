using System.Diagnostics;
using System.Globalization;
using TokenService.Azure.Tables;
using TokenService.Azure.Tables.Stores;
using TokenService.Configuration;
using TokenService.Sessions;

namespace TokenService.Benchmarks;

/// <summary>
/// Fills the sessions table with live sessions of synthetic users, through the store the host uses (one entity group
/// transaction per user, its <c>!user</c> row included), so that load runs can show whether the per-request cost grows
/// with the table: <c>preload --connection "UseDevelopmentStorage=true" --sessions 100000 [--per-user 10]</c>.
/// Loopback (Azurite) only.
/// </summary>
internal static class TablePreload
{
    public static async Task<int> RunAsync(string[] args)
    {
        var connection = Option(args, "--connection") ?? "UseDevelopmentStorage=true";
        var sessions = int.Parse(Option(args, "--sessions") ?? "1000", CultureInfo.InvariantCulture);
        var perUser = int.Parse(Option(args, "--per-user") ?? "10", CultureInfo.InvariantCulture);
        var client = TableStorage.CreateClient(new StorageOptions { TableConnectionString = connection }, () => throw new InvalidOperationException("A connection string is needed."));
        if (!client.Uri.IsLoopback)
        {
            Console.Error.WriteLine("The preload only targets loopback addresses (Azurite).");
            return 2;
        }

        var store = new TableSessionStore(new TableProvisioner(client));
        var now = DateTimeOffset.UtcNow;
        var run = Guid.NewGuid().ToString("N")[..8];
        var users = (sessions + perUser - 1) / perUser;
        var watch = Stopwatch.StartNew();
        await Parallel.ForAsync(0, users, new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (u, ct) =>
        {
            var userId = $"preload-{run}-{u}";
            var count = Math.Min(perUser, sessions - (u * perUser));
            var inserts = Enumerable.Range(0, count).Select(_ => Session(userId, now)).ToList();
            if (await store.CommitAsync(new UserSessionsChange(userId, null, inserts, []), ct) != StoreWriteStatus.Success)
            {
                throw new InvalidOperationException($"Preloading {userId} failed.");
            }
        });
        Console.Error.WriteLine($"preloaded {sessions} sessions of {users} users in {watch.Elapsed.TotalSeconds:F0} s");
        return 0;
    }

    private static SessionRecord Session(string userId, DateTimeOffset now) => new()
    {
        SessionId = SessionIds.NewSessionId(userId),
        UserId = userId,
        Subject = userId,
        ClientId = "dev-confidential",
        Scope = "openid profile",
        Audiences = ["api://dev"],
        CreatedAt = now,
        LastActivityAt = now,
        IdleExpiresAt = now.AddDays(14),
        AbsoluteExpiresAt = now.AddDays(90),
        Amr = ["pwd"],
        RefreshTokenHash = Convert.ToBase64String(Guid.NewGuid().ToByteArray()),
        RefreshTokenExpiresAt = now.AddDays(14),
        WriteId = Guid.NewGuid().ToString("N"),
        PurgeAt = now.AddDays(91),
        Device = "load test",
    };

    private static string? Option(string[] args, string name)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }
}
