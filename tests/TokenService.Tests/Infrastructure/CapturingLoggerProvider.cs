using System.Collections.Concurrent;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace TokenService.Tests.Infrastructure;

/// <summary>One captured log entry: the formatted message and the structured values it was written with.</summary>
public sealed record CapturedLog(string Category, EventId Id, LogLevel Level, string Message, IReadOnlyList<KeyValuePair<string, object?>> Values);

/// <summary>
/// Captures what a host logs. <see cref="AddTo"/> registers it on either host's services and lets every level of the
/// service's own categories (<c>TokenService.*</c>) through to it, whatever the host's minimum level.
/// </summary>
public sealed class CapturingLoggerProvider : ILoggerProvider
{
    public ConcurrentQueue<CapturedLog> Entries { get; } = new();

    public void AddTo(IServiceCollection services)
    {
        services.AddSingleton<ILoggerProvider>(this);
        services.Configure<LoggerFilterOptions>(o => o.Rules.Add(new LoggerFilterRule(typeof(CapturingLoggerProvider).FullName, "TokenService", LogLevel.Trace, null)));
    }

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose()
    {
    }

    private sealed class Logger(CapturingLoggerProvider owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            owner.Entries.Enqueue(new CapturedLog(
                category, eventId, logLevel, formatter(state, exception),
                state as IReadOnlyList<KeyValuePair<string, object?>> ?? [])); // [LoggerMessage] state is the list of named values
    }
}
