using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Azure;
using Azure.Core;
using Azure.Core.Pipeline;

namespace TokenService.Azure.Tables;

public enum TableWriteStatus
{
    Success,

    /// <summary>409 EntityAlreadyExists on insert, or 412 on a conditional write.</summary>
    Conflict,

    NotFound,
}

public readonly record struct TableWriteResult(TableWriteStatus Status, string? ETag = null)
{
    public bool Succeeded => Status == TableWriteStatus.Success;
}

public enum TableUpdateMode
{
    Replace,
    Merge,
}

/// <summary>One operation of an entity group transaction.</summary>
public sealed record TableBatchOperation(TableBatchOperationKind Kind, TableEntity Entity, string? IfMatch = null);

public enum TableBatchOperationKind
{
    Insert,
    Replace,
    Merge,
    Delete,
}

/// <summary>Outcome of an entity group transaction: all operations applied, or none and which one failed.</summary>
public readonly record struct TableBatchResult(bool Succeeded, int FailedStatus = 0, int? FailedIndex = null, string? ErrorCode = null)
{
    public bool IsConflict => FailedStatus is 409 or 412;
}

public sealed class TableClientOptions : ClientOptions
{
    public TableClientOptions()
    {
        Retry.MaxRetries = 3;
        Retry.Mode = RetryMode.Exponential;
        Retry.Delay = TimeSpan.FromMilliseconds(200);
        Retry.MaxDelay = TimeSpan.FromSeconds(2);
        Retry.NetworkTimeout = TimeSpan.FromSeconds(10);
    }
}

/// <summary>
/// A small typed Table service client on Azure.Core's <see cref="HttpPipeline"/> (retries, diagnostics, auth),
/// following the Table service REST API (x-ms-version 2019-02-02, OData JSON). Conditions callers handle
/// (409/412/404) are results; throttling, 5xx, timeouts and transport failures after the pipeline's retries are
/// <see cref="DependencyUnavailableException"/>; anything else is <see cref="TableStorageException"/>.
/// </summary>
public sealed partial class TableServiceClient
{
    public const string ApiVersion = "2019-02-02";
    private const string MinimalMetadata = "application/json;odata=minimalmetadata";

    private readonly HttpPipeline _pipeline;
    private readonly string _endpoint;

    public TableServiceClient(TableConnection connection, TableClientOptions? options = null)
        : this(connection.Endpoint, options ?? new TableClientOptions(), connection.AccountKey is null ? [] : [new TableSharedKeyPolicy(connection.AccountName, connection.AccountKey)])
    {
    }

    /// <summary>Entra ID auth (managed identity, workload identity…) for <c>Storage:TableServiceUri</c>.</summary>
    public TableServiceClient(Uri serviceUri, TokenCredential credential, TableClientOptions? options = null)
        : this(serviceUri, options ?? new TableClientOptions(), [new BearerTokenAuthenticationPolicy(credential, "https://storage.azure.com/.default")])
    {
    }

    private TableServiceClient(Uri endpoint, TableClientOptions options, HttpPipelinePolicy[] authPolicies)
    {
        _endpoint = endpoint.AbsoluteUri.TrimEnd('/');
        _pipeline = HttpPipelineBuilder.Build(options, authPolicies);
    }

    public Uri Endpoint => new(_endpoint);

    public async Task CreateTableIfNotExistsAsync(string table, CancellationToken cancellationToken)
    {
        using var message = Create(RequestMethod.Post, _endpoint + "/Tables");
        message.Request.Content = RequestContent.Create(JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, string> { ["TableName"] = table }));
        message.Request.Headers.SetValue("Content-Type", "application/json");
        message.Request.Headers.SetValue("Prefer", "return-no-content");
        var response = await SendAsync(message, cancellationToken);
        if (response.Status is 201 or 204 or 409)
        {
            return;
        }

        throw Failure(response, "create table");
    }

    public async Task<TableEntity?> GetEntityAsync(string table, string partitionKey, string rowKey, CancellationToken cancellationToken)
    {
        using var message = Create(RequestMethod.Get, _endpoint + "/" + TableKeys.EntityPath(table, partitionKey, rowKey));
        var response = await SendAsync(message, cancellationToken);
        if (response.Status == 404)
        {
            return null;
        }

        if (response.Status != 200)
        {
            throw Failure(response, "get entity");
        }

        using var json = JsonDocument.Parse(response.Content.ToMemory());
        return TableEntity.FromJson(json.RootElement, response.Headers.ETag?.ToString());
    }

    /// <summary>Insert Entity: <see cref="TableWriteStatus.Conflict"/> when the row exists.</summary>
    public async Task<TableWriteResult> InsertAsync(string table, TableEntity entity, CancellationToken cancellationToken)
    {
        using var message = Create(RequestMethod.Post, _endpoint + "/" + table);
        SetBody(message, entity);
        message.Request.Headers.SetValue("Prefer", "return-no-content");
        var response = await SendAsync(message, cancellationToken);
        return response.Status switch
        {
            201 or 204 => new(TableWriteStatus.Success, response.Headers.ETag?.ToString()),
            409 => new(TableWriteStatus.Conflict),
            _ => throw Failure(response, "insert entity"),
        };
    }

    /// <summary>Insert Or Replace / Insert Or Merge Entity (no condition).</summary>
    public Task<TableWriteResult> UpsertAsync(string table, TableEntity entity, TableUpdateMode mode, CancellationToken cancellationToken) =>
        WriteAsync(table, entity, mode, ifMatch: null, cancellationToken);

    /// <summary>Update / Merge Entity with <c>If-Match</c>: <see cref="TableWriteStatus.Conflict"/> on 412.</summary>
    public Task<TableWriteResult> UpdateAsync(string table, TableEntity entity, string ifMatch, TableUpdateMode mode, CancellationToken cancellationToken) =>
        WriteAsync(table, entity, mode, ifMatch, cancellationToken);

    private async Task<TableWriteResult> WriteAsync(string table, TableEntity entity, TableUpdateMode mode, string? ifMatch, CancellationToken cancellationToken)
    {
        var method = mode == TableUpdateMode.Replace ? RequestMethod.Put : new RequestMethod("MERGE");
        using var message = Create(method, _endpoint + "/" + TableKeys.EntityPath(table, entity.PartitionKey, entity.RowKey));
        SetBody(message, entity);
        if (ifMatch is not null)
        {
            message.Request.Headers.SetValue("If-Match", ifMatch);
        }

        var response = await SendAsync(message, cancellationToken);
        return response.Status switch
        {
            204 or 200 => new(TableWriteStatus.Success, response.Headers.ETag?.ToString()),
            412 => new(TableWriteStatus.Conflict),
            404 => new(TableWriteStatus.NotFound),
            _ => throw Failure(response, "update entity"),
        };
    }

    /// <summary>Delete Entity with <c>If-Match</c> (an ETag, or * for any version).</summary>
    public async Task<TableWriteResult> DeleteAsync(string table, string partitionKey, string rowKey, string ifMatch, CancellationToken cancellationToken)
    {
        using var message = Create(RequestMethod.Delete, _endpoint + "/" + TableKeys.EntityPath(table, partitionKey, rowKey));
        message.Request.Headers.SetValue("If-Match", ifMatch);
        var response = await SendAsync(message, cancellationToken);
        return response.Status switch
        {
            204 => new(TableWriteStatus.Success),
            404 => new(TableWriteStatus.NotFound),
            412 => new(TableWriteStatus.Conflict),
            _ => throw Failure(response, "delete entity"),
        };
    }

    public sealed record QueryPage(IReadOnlyList<TableEntity> Entities, string? NextPartitionKey, string? NextRowKey)
    {
        public bool HasMore => NextPartitionKey is not null;
    }

    /// <summary>Query Entities: one page, continuing from a previous page's continuation keys.</summary>
    public async Task<QueryPage> QueryPageAsync(
        string table, string? filter, IReadOnlyList<string>? select, int? top, string? nextPartitionKey, string? nextRowKey, CancellationToken cancellationToken)
    {
        var query = new List<string>();
        if (filter is not null)
        {
            query.Add("$filter=" + Uri.EscapeDataString(filter));
        }

        if (select is { Count: > 0 })
        {
            query.Add("$select=" + Uri.EscapeDataString(string.Join(',', select)));
        }

        if (top is { } t)
        {
            query.Add("$top=" + t.ToString(CultureInfo.InvariantCulture));
        }

        if (nextPartitionKey is not null)
        {
            query.Add("NextPartitionKey=" + Uri.EscapeDataString(nextPartitionKey));
            if (nextRowKey is not null)
            {
                query.Add("NextRowKey=" + Uri.EscapeDataString(nextRowKey));
            }
        }

        var url = _endpoint + "/" + table + "()" + (query.Count > 0 ? "?" + string.Join('&', query) : string.Empty);
        using var message = Create(RequestMethod.Get, url);
        var response = await SendAsync(message, cancellationToken);
        if (response.Status != 200)
        {
            throw Failure(response, "query entities");
        }

        using var json = JsonDocument.Parse(response.Content.ToMemory());
        var entities = json.RootElement.GetProperty("value").EnumerateArray().Select(e => TableEntity.FromJson(e)).ToList();
        response.Headers.TryGetValue("x-ms-continuation-NextPartitionKey", out var nextPk);
        response.Headers.TryGetValue("x-ms-continuation-NextRowKey", out var nextRk);
        return new QueryPage(entities, nextPk, nextRk);
    }

    /// <summary>Query Entities across all continuation pages.</summary>
    public async IAsyncEnumerable<TableEntity> QueryAsync(
        string table, string? filter, IReadOnlyList<string>? select = null, int? pageSize = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        string? pk = null, rk = null;
        do
        {
            var page = await QueryPageAsync(table, filter, select, pageSize, pk, rk, cancellationToken);
            foreach (var entity in page.Entities)
            {
                yield return entity;
            }

            (pk, rk) = (page.NextPartitionKey, page.NextRowKey);
        }
        while (pk is not null);
    }

    /// <summary>
    /// Entity group transaction ($batch with one changeset): up to 100 operations on one partition, applied
    /// atomically. A failed operation (409, 412, 404…) fails the whole batch and is reported, not thrown.
    /// </summary>
    public async Task<TableBatchResult> SubmitBatchAsync(string table, IReadOnlyList<TableBatchOperation> operations, CancellationToken cancellationToken)
    {
        if (operations.Count is 0 or > 100)
        {
            throw new ArgumentOutOfRangeException(nameof(operations), "A batch holds 1 to 100 operations.");
        }

        if (operations.Select(o => o.Entity.PartitionKey).Distinct(StringComparer.Ordinal).Count() != 1)
        {
            throw new ArgumentException("All operations of a batch must share one PartitionKey.", nameof(operations));
        }

        var batchBoundary = "batch_" + Guid.NewGuid().ToString("N");
        var changesetBoundary = "changeset_" + Guid.NewGuid().ToString("N");
        var body = new StringBuilder();
        body.Append("--").Append(batchBoundary).Append("\r\n");
        body.Append("Content-Type: multipart/mixed; boundary=").Append(changesetBoundary).Append("\r\n\r\n");
        for (var i = 0; i < operations.Count; i++)
        {
            var op = operations[i];
            var (method, url) = op.Kind switch
            {
                TableBatchOperationKind.Insert => ("POST", _endpoint + "/" + table),
                TableBatchOperationKind.Replace => ("PUT", _endpoint + "/" + TableKeys.EntityPath(table, op.Entity.PartitionKey, op.Entity.RowKey)),
                TableBatchOperationKind.Merge => ("MERGE", _endpoint + "/" + TableKeys.EntityPath(table, op.Entity.PartitionKey, op.Entity.RowKey)),
                _ => ("DELETE", _endpoint + "/" + TableKeys.EntityPath(table, op.Entity.PartitionKey, op.Entity.RowKey)),
            };
            body.Append("--").Append(changesetBoundary).Append("\r\n");
            body.Append("Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n");
            body.Append(method).Append(' ').Append(url).Append(" HTTP/1.1\r\n");
            body.Append("Content-ID: ").Append((i + 1).ToString(CultureInfo.InvariantCulture)).Append("\r\n");
            body.Append("Accept: ").Append(MinimalMetadata).Append("\r\n");
            body.Append("DataServiceVersion: 3.0;\r\n");
            if (op.IfMatch is not null)
            {
                body.Append("If-Match: ").Append(op.IfMatch).Append("\r\n");
            }

            if (op.Kind == TableBatchOperationKind.Delete)
            {
                body.Append("\r\n");
            }
            else
            {
                body.Append("Prefer: return-no-content\r\nContent-Type: application/json\r\n\r\n");
                body.Append(Encoding.UTF8.GetString(op.Entity.ToJson())).Append("\r\n");
            }
        }

        body.Append("--").Append(changesetBoundary).Append("--\r\n");
        body.Append("--").Append(batchBoundary).Append("--\r\n");

        using var message = Create(RequestMethod.Post, _endpoint + "/$batch");
        message.Request.Content = RequestContent.Create(Encoding.UTF8.GetBytes(body.ToString()));
        message.Request.Headers.SetValue("Content-Type", "multipart/mixed; boundary=" + batchBoundary);
        var response = await SendAsync(message, cancellationToken);
        if (response.Status != 202)
        {
            throw Failure(response, "batch");
        }

        // The response is multipart: one "HTTP/1.1 <status>" per operation, or a single failed one.
        var text = response.Content.ToString();
        foreach (Match match in StatusLine().Matches(text))
        {
            var status = int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
            if (status >= 400)
            {
                var code = ErrorCodeInBody().Match(text) is { Success: true } c ? c.Groups[1].Value : null;
                var index = FailedIndexInBody().Match(text) is { Success: true } m ? int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) : (int?)null;
                if (status is 429 or 500 or 503)
                {
                    throw new DependencyUnavailableException("storage", $"Table service answered {status} inside a batch.");
                }

                return new TableBatchResult(false, status, index, code);
            }
        }

        return new TableBatchResult(true);
    }

    private HttpMessage Create(RequestMethod method, string url)
    {
        var message = _pipeline.CreateMessage();
        var request = message.Request;
        request.Method = method;
        request.Uri.Reset(new Uri(url));
        request.Headers.SetValue("x-ms-version", ApiVersion);
        request.Headers.SetValue("Accept", MinimalMetadata);
        request.Headers.SetValue("DataServiceVersion", "3.0");
        request.Headers.SetValue("MaxDataServiceVersion", "3.0;NetFx");
        return message;
    }

    private static void SetBody(HttpMessage message, TableEntity entity)
    {
        message.Request.Content = RequestContent.Create(entity.ToJson());
        message.Request.Headers.SetValue("Content-Type", "application/json");
    }

    private async Task<Response> SendAsync(HttpMessage message, CancellationToken cancellationToken)
    {
        try
        {
            await _pipeline.SendAsync(message, cancellationToken);
        }
        catch (RequestFailedException ex)
        {
            throw new DependencyUnavailableException("storage", "Table service unreachable: " + ex.Message, null, ex);
        }
        catch (OperationCanceledException ex) when (!cancellationToken.IsCancellationRequested)
        {
            throw new DependencyUnavailableException("storage", "Table service timed out.", null, ex);
        }
        catch (AggregateException ex) when (!cancellationToken.IsCancellationRequested)
        {
            // The pipeline's retry policy reports exhausted retries of transport failures this way.
            throw new DependencyUnavailableException("storage", "Table service unreachable after retries.", null, ex);
        }

        var response = message.Response;

        // 401/403: the identity lacks access (a deployment fault); fail closed like any outage.
        if (response.Status is 401 or 403 or 408 or 429 or 500 or 502 or 503 or 504)
        {
            TimeSpan? retryAfter = response.Headers.TryGetValue("Retry-After", out var value) && int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds)
                ? TimeSpan.FromSeconds(seconds)
                : null;
            throw new DependencyUnavailableException("storage", $"Table service answered {response.Status}.", retryAfter);
        }

        return response;
    }

    private static TableStorageException Failure(Response response, string operation)
    {
        string? code = null;
        try
        {
            using var json = JsonDocument.Parse(response.Content.ToMemory());
            code = json.RootElement.GetProperty("odata.error").GetProperty("code").GetString();
        }
        catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException)
        {
        }

        return new TableStorageException(response.Status, code, $"Table service {operation} failed: {response.Status} {code}.");
    }

    [GeneratedRegex(@"HTTP/1\.1 (\d{3})")]
    private static partial Regex StatusLine();

    [GeneratedRegex("\"code\"\\s*:\\s*\"([^\"]+)\"")]
    private static partial Regex ErrorCodeInBody();

    [GeneratedRegex("\"value\"\\s*:\\s*\"(\\d+):")]
    private static partial Regex FailedIndexInBody();
}
