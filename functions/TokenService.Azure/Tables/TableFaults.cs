using System.Globalization;
using Azure;

namespace TokenService.Azure.Tables;

/// <summary>
/// Which Table service failures are outages. The SDK's pipeline has already retried 408/429/5xx and transport
/// failures (<see cref="TableStorage.DefaultOptions"/>); what still fails, and 401/403 (an identity without
/// access, a deployment fault), becomes <see cref="DependencyUnavailableException"/>, which the endpoints answer
/// with 503 and <c>Retry-After</c>: fail closed. 404/409/412 are not outages: the stores turn them into results.
/// </summary>
internal static class TableFaults
{
    public const string Dependency = "storage";

    /// <summary>
    /// The outage <paramref name="exception"/> stands for, or null when it is none (a condition the caller
    /// handles, a bug, or the caller's own cancellation). Use as
    /// <c>catch (Exception ex) when (TableFaults.AsUnavailable(ex, ct) is { } e) { throw e; }</c>.
    /// </summary>
    public static DependencyUnavailableException? AsUnavailable(Exception exception, CancellationToken cancellationToken) => exception switch
    {
        // Status 0: no answer at all (connection refused, reset, DNS), after the retries.
        RequestFailedException { Status: 0 } ex => new(Dependency, "Table service unreachable: " + ex.Message, null, ex),
        RequestFailedException { Status: 401 or 403 or 408 or 429 or 500 or 502 or 503 or 504 } ex =>
            new(Dependency, $"Table service answered {ex.Status} ({ex.ErrorCode}).", RetryAfter(ex), ex),

        // A try that exceeded the network timeout, when retries are off or it was the only failure.
        OperationCanceledException ex when !cancellationToken.IsCancellationRequested => new(Dependency, "Table service timed out.", null, ex),

        // Azure.Core's retry policy reports several failed tries (timeouts, transport errors) this way.
        AggregateException ex when !cancellationToken.IsCancellationRequested => new(Dependency, "Table service unreachable after retries.", null, ex),
        _ => null,
    };

    /// <summary>404, 409 or 412: the caller's snapshot is stale (a row moved, exists already or is gone).</summary>
    public static bool IsConflict(RequestFailedException exception) => exception.Status is 404 or 409 or 412;

    private static TimeSpan? RetryAfter(RequestFailedException exception) =>
        exception.GetRawResponse() is { } response
        && response.Headers.TryGetValue("Retry-After", out var value)
        && int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds)
            ? TimeSpan.FromSeconds(seconds)
            : null;
}
