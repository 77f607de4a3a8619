using System.Globalization;
using System.Text.Json;
using Azure;

namespace TokenService.Azure.Tables;

/// <summary>
/// Which Table service failures are outages. The SDK's pipeline has already retried 408/429/5xx and transport
/// failures (<see cref="TableStorage.DefaultOptions"/>); what still fails, and 401/403 (an identity without
/// access, a deployment fault), becomes <see cref="DependencyUnavailableException"/>, which the endpoints answer
/// with 503 and <c>Retry-After</c>: fail closed. 404/409/412 on an entity are not outages: the stores turn them into
/// results. A table that is gone (404 <c>TableNotFound</c>, 409 <c>TableBeingDeleted</c>) is no entity answer but a
/// storage fault: <see cref="Stores.TableProvisioner.RunAsync{T}"/> re-creates the table and retries once, and what
/// still fails is an outage like any other answer the stores do not expect.
/// </summary>
internal static class TableFaults
{
    public const string Dependency = "storage";

    private const string TableNotFound = "TableNotFound";
    private const string TableBeingDeleted = "TableBeingDeleted";

    /// <summary>
    /// The outage <paramref name="exception"/> stands for, or null when it is none (a condition the caller
    /// handles, a bug, or the caller's own cancellation). Use as
    /// <c>catch (Exception ex) when (TableFaults.AsUnavailable(ex, ct) is { } e) { throw e; }</c>.
    /// The message names the Table service <paramref name="endpoint"/> (scheme, host, port and path only: never a query,
    /// which could be a SAS) so that the operator reading the warning knows which address did not answer. Messages end
    /// without a period: the log lines that carry them add their own punctuation.
    /// </summary>
    public static DependencyUnavailableException? AsUnavailable(Exception exception, CancellationToken cancellationToken, Uri? endpoint = null)
    {
        var service = endpoint is null ? "Table service" : "Table service at " + Endpoint(endpoint);
        return exception switch
        {
            // Status 0: no answer at all (connection refused, reset, DNS), after the retries.
            RequestFailedException { Status: 0 } ex => new(Dependency, $"{service} unreachable: {ex.Message.TrimEnd('.')}", null, ex),

            // Throttling, server errors, no access, a table still missing after its re-creation, and any other answer the
            // caller did not turn into a result: the store cannot answer, which is an outage (503), never a bug (500).
            RequestFailedException ex => new(Dependency, $"{service} answered {ex.Status} ({ex.ErrorCode ?? "no error code"})", RetryAfter(ex), ex),

            // A try that exceeded the network timeout, when retries are off or it was the only failure.
            OperationCanceledException ex when !cancellationToken.IsCancellationRequested => new(Dependency, $"{service} timed out", null, ex),

            // Azure.Core's retry policy reports several failed tries (timeouts, transport errors) this way.
            AggregateException ex when !cancellationToken.IsCancellationRequested => new(Dependency, $"{service} unreachable after {ex.InnerExceptions.Count} tries", null, ex),
            _ => null,
        };
    }

    /// <summary>The endpoint without query or fragment (a SAS token travels in the query) nor user info.</summary>
    private static string Endpoint(Uri endpoint) =>
        endpoint.IsAbsoluteUri ? endpoint.GetComponents(UriComponents.SchemeAndServer | UriComponents.Path, UriFormat.UriEscaped) : "(relative endpoint)";

    /// <summary>
    /// 404, 409 or 412 on an entity: the caller's snapshot is stale (a row moved, exists already or is gone). Not when
    /// the table itself is gone (<see cref="IsTableGone(RequestFailedException)"/>): that is no answer about the row.
    /// </summary>
    public static bool IsConflict(RequestFailedException exception) => exception.Status is 404 or 409 or 412 && !IsTableGone(exception);

    /// <summary>
    /// The table does not exist (404 <c>TableNotFound</c>; 404 <c>ResourceNotFound</c> is a missing entity) or is
    /// being deleted (409 <c>TableBeingDeleted</c>, Azure's state for about 40 s after a delete).
    /// </summary>
    public static bool IsTableGone(RequestFailedException exception) =>
        exception is { Status: 404, ErrorCode: TableNotFound } or { Status: 409, ErrorCode: TableBeingDeleted };

    /// <summary>
    /// Throws the <c>TableNotFound</c> fault that <paramref name="response"/>, a 404 the SDK returned instead of
    /// throwing (<c>GetEntityIfExistsAsync</c>, <c>DeleteEntityAsync</c>), stands for: without this check a missing
    /// table reads as a missing row.
    /// </summary>
    public static void ThrowIfTableNotFound(Response response)
    {
        if (response.Status == 404 && ErrorCodeOf(response) == TableNotFound)
        {
            throw new RequestFailedException(response.Status, "The table does not exist.", TableNotFound, null);
        }
    }

    /// <summary>The service's error code: the <c>x-ms-error-code</c> header, else the <c>odata.error</c> body.</summary>
    private static string? ErrorCodeOf(Response response)
    {
        if (response.Headers.TryGetValue("x-ms-error-code", out var header))
        {
            return header;
        }

        try
        {
            using var body = JsonDocument.Parse(response.Content.ToMemory());
            return body.RootElement.TryGetProperty("odata.error", out var error) && error.TryGetProperty("code", out var code) && code.ValueKind == JsonValueKind.String
                ? code.GetString()
                : null;
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException)
        {
            return null; // no JSON body (or none buffered): no error code
        }
    }

    private static TimeSpan? RetryAfter(RequestFailedException exception) =>
        exception.GetRawResponse() is { } response
        && response.Headers.TryGetValue("Retry-After", out var value)
        && int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds)
            ? TimeSpan.FromSeconds(seconds)
            : null;
}
