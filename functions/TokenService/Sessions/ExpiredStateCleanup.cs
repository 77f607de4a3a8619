using Microsoft.Extensions.Logging;

namespace TokenService.Sessions;

/// <summary>
/// One cleanup pass over every store that holds expiring state (sessions, deny list, replay markers).
/// Run by a hosted service in the standalone host and by a TimerTrigger in the Functions app.
/// </summary>
public sealed partial class ExpiredStateCleanup(IEnumerable<IExpiredStateCleaner> cleaners, TimeProvider time, ILogger<ExpiredStateCleanup> logger)
{
    private readonly IExpiredStateCleaner[] _cleaners = cleaners.Distinct().ToArray();

    public async Task<int> RunOnceAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var total = 0;
        foreach (var cleaner in _cleaners)
        {
            try
            {
                total += await cleaner.PurgeExpiredAsync(now, cancellationToken);
            }
            catch (DependencyUnavailableException ex)
            {
                // The next pass tries again; nothing live is ever touched.
                LogCleanupFailed(logger, cleaner.GetType().Name, ex.Message.TrimEnd('.'));
            }
        }

        LogCleanup(logger, total);
        return total;
    }

    [LoggerMessage(EventId = 2101, Level = LogLevel.Information, Message = "Cleanup removed {Count} expired record(s).")]
    private static partial void LogCleanup(ILogger logger, int count);

    [LoggerMessage(EventId = 2102, Level = LogLevel.Warning, Message = "Cleanup of {Store} failed: {Reason}.")]
    private static partial void LogCleanupFailed(ILogger logger, string store, string reason);
}
