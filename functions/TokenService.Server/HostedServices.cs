using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TokenService.Configuration;
using TokenService.Events;
using TokenService.Keys;
using TokenService.Sessions;

namespace TokenService.Server;

/// <summary>Runs the key lifecycle check at start and then every <c>Keys:CheckInterval</c> (the Functions app uses a TimerTrigger).</summary>
internal sealed partial class KeyRotationHostedService(ISigningKeyService keys, IOptions<KeysOptions> options, TimeProvider time, ILogger<KeyRotationHostedService> logger)
    : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // On the injected TimeProvider, not wall-clock time: a fake clock in tests runs the check by advancing.
        using var timer = new PeriodicTimer(options.Value.CheckInterval, time);
        do
        {
            try
            {
                var result = await keys.RunRotationCheckAsync(stoppingToken);
                if (result.Changed)
                {
                    LogRotation(logger, result.Summary);
                }
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                LogRotationFailed(logger, ex);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    [LoggerMessage(EventId = 4101, Level = LogLevel.Information, Message = "Key rotation check: {Summary}")]
    private static partial void LogRotation(ILogger logger, string summary);

    [LoggerMessage(EventId = 4102, Level = LogLevel.Error, Message = "Key rotation check failed; it runs again at the next interval.")]
    private static partial void LogRotationFailed(ILogger logger, Exception exception);
}

/// <summary>Purges expired sessions, deny-list entries and replay markers every <c>Storage:CleanupInterval</c>.</summary>
internal sealed partial class CleanupHostedService(ExpiredStateCleanup cleanup, IOptions<StorageOptions> options, TimeProvider time, ILogger<CleanupHostedService> logger)
    : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.CleanupInterval, time);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                await cleanup.RunOnceAsync(stoppingToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                LogCleanupFailed(logger, ex);
            }
        }
    }

    [LoggerMessage(EventId = 2103, Level = LogLevel.Error, Message = "Cleanup pass failed; it runs again at the next interval.")]
    private static partial void LogCleanupFailed(ILogger logger, Exception exception);
}

/// <summary>
/// Checks the Microsoft Graph subscription at start and then every <c>Events:GraphSubscription:CheckInterval</c>
/// (daily; the Functions app uses the GraphSubscriptionRenewal timer). Nothing to do unless
/// <c>Events:GraphSubscription:NotificationUrl</c> is set. A failure is logged by the manager (5015) and retried at
/// the next run: renewal starts 7 days before expiry, so several failed days still leave the subscription alive.
/// </summary>
internal sealed class GraphSubscriptionHostedService(GraphSubscriptionManager manager, IOptions<EventsOptions> options, TimeProvider time)
    : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!manager.Enabled)
        {
            return;
        }

        using var timer = new PeriodicTimer(options.Value.GraphSubscription.CheckInterval, time);
        do
        {
            try
            {
                await manager.EnsureAsync(stoppingToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // Logged by the manager (5015).
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }
}
