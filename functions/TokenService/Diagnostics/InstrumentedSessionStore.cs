using System.Diagnostics;
using TokenService.Sessions;

namespace TokenService.Diagnostics;

/// <summary>
/// Decorates the session store (Table Storage or in-memory) with the store latency histogram, by operation and
/// outcome, so that no store carries telemetry. A conflict (412) is an outcome, not an error; a throttled or
/// unreachable store is (<c>error.type</c> storage_throttled / storage_unavailable).
/// </summary>
public sealed class InstrumentedSessionStore(ISessionStore inner, TokenServiceMetrics metrics) : ISessionStore
{
    /// <summary>The decorated store (start-up finds its expired-state cleaner through it).</summary>
    public ISessionStore Inner => inner;

    public ValueTask<SessionRecord?> GetSessionAsync(string sessionId, CancellationToken cancellationToken) =>
        Enabled ? MeasureAsync("get_session", Stopwatch.GetTimestamp(), inner.GetSessionAsync(sessionId, cancellationToken)) : inner.GetSessionAsync(sessionId, cancellationToken);

    public ValueTask<UserSessionIndex> GetUserIndexAsync(string userId, CancellationToken cancellationToken) =>
        Enabled ? MeasureAsync("get_user_index", Stopwatch.GetTimestamp(), inner.GetUserIndexAsync(userId, cancellationToken)) : inner.GetUserIndexAsync(userId, cancellationToken);

    public ValueTask<UserSessions> GetUserSessionsAsync(string userId, CancellationToken cancellationToken) =>
        Enabled ? MeasureAsync("get_user_sessions", Stopwatch.GetTimestamp(), inner.GetUserSessionsAsync(userId, cancellationToken)) : inner.GetUserSessionsAsync(userId, cancellationToken);

    public ValueTask<StoreWriteResult> ReplaceSessionAsync(SessionRecord updated, CancellationToken cancellationToken) =>
        Enabled ? MeasureAsync("replace_session", Stopwatch.GetTimestamp(), inner.ReplaceSessionAsync(updated, cancellationToken)) : inner.ReplaceSessionAsync(updated, cancellationToken);

    public ValueTask<StoreWriteStatus> CommitAsync(UserSessionsChange change, CancellationToken cancellationToken) =>
        Enabled ? MeasureAsync("commit", Stopwatch.GetTimestamp(), inner.CommitAsync(change, cancellationToken)) : inner.CommitAsync(change, cancellationToken);

    public ValueTask<StoreCommitResult> CommitReturningVersionsAsync(UserSessionsChange change, CancellationToken cancellationToken) =>
        Enabled
            ? MeasureAsync("commit", Stopwatch.GetTimestamp(), inner.CommitReturningVersionsAsync(change, cancellationToken))
            : inner.CommitReturningVersionsAsync(change, cancellationToken);

    private bool Enabled => metrics.StoreDuration.Enabled;

    // C# evaluates arguments left to right: the start is read before the operation is called, so its synchronous
    // part (building and sending the request) is measured too.
    private async ValueTask<T> MeasureAsync<T>(string operation, long start, ValueTask<T> pending)
    {
        string? error = null;
        try
        {
            return await pending;
        }
        catch (Exception ex)
        {
            error = TokenServiceDiagnostics.ErrorType(ex);
            throw;
        }
        finally
        {
            var tags = new TagList { { TokenServiceMetrics.Tags.Operation, operation } };
            if (error is not null)
            {
                tags.Add(TokenServiceMetrics.Tags.ErrorType, error);
            }

            metrics.StoreDuration.Record(TokenServiceMetrics.SecondsSince(start), tags);
        }
    }
}
