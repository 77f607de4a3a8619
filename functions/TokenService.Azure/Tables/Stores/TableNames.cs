using Azure;
using Azure.Data.Tables;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using TokenService.Sessions;

namespace TokenService.Azure.Tables.Stores;

/// <summary>The tables this service uses (infra/ creates them too; the stores create them if missing).</summary>
public static class TableNames
{
    public const string Sessions = "sessions";
    public const string TokenMarkers = "tokenmarkers";

    /// <summary>The Shared Signals transmitter's streams and their held events (docs/table-storage.md).</summary>
    public const string SsfStreams = "ssfstreams";
}

/// <summary>
/// Creates the tables once per process, retrying on the next use when the first attempt failed, and again whenever
/// one is found gone while the process runs (a table deleted by hand, an in-memory Azurite restarted): every store
/// operation runs through <see cref="RunAsync{T}"/>, which re-creates a missing table and retries the operation once.
/// Also the store's <c>/healthz</c> check (<see cref="CheckAsync"/>).
/// </summary>
public sealed partial class TableProvisioner(TableServiceClient client, ILogger<TableProvisioner>? logger = null) : IStoreHealthCheck
{
    private static readonly string[] KeysOnly = ["PartitionKey"];

    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly ILogger _logger = logger ?? NullLogger<TableProvisioner>.Instance;
    private readonly TableState _sessions = new(client.GetTableClient(TableNames.Sessions));
    private readonly TableState _tokenMarkers = new(client.GetTableClient(TableNames.TokenMarkers));
    private readonly TableState _ssfStreams = new(client.GetTableClient(TableNames.SsfStreams));
    private volatile bool _ready;

    public TableClient Sessions => _sessions.Table;

    public TableClient TokenMarkers => _tokenMarkers.Table;

    public TableClient SsfStreams => _ssfStreams.Table;

    public async ValueTask EnsureAsync(CancellationToken cancellationToken)
    {
        if (_ready)
        {
            return;
        }

        await _gate.WaitAsync(cancellationToken);
        try
        {
            if (!_ready)
            {
                if (Created(await Sessions.CreateIfNotExistsAsync(cancellationToken)))
                {
                    await TableSessionStore.MarkIndexedFromStartAsync(Sessions, cancellationToken);
                }

                await TokenMarkers.CreateIfNotExistsAsync(cancellationToken);
                await SsfStreams.CreateIfNotExistsAsync(cancellationToken);
                _ready = true;
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// Runs <paramref name="operation"/> on <paramref name="table"/> (<see cref="Sessions"/> or <see cref="TokenMarkers"/>):
    /// when the table is gone it is re-created (one creation shared by every caller that met the same loss) and the
    /// operation runs once more, within the caller's budget. What fails then, and every Table service answer the
    /// operation does not turn into a result itself, is logged with its status and error code and thrown as
    /// <see cref="DependencyUnavailableException"/> (503): a missing table is a storage fault, never a 500. An
    /// operation's conditional writes meet the re-created, empty table as the 404/412 they are.
    /// </summary>
    public async ValueTask<T> RunAsync<T>(TableClient table, Func<CancellationToken, ValueTask<T>> operation, CancellationToken cancellationToken)
    {
        var state = StateOf(table);
        try
        {
            await EnsureAsync(cancellationToken);
            var generation = state.Generation;
            try
            {
                return await operation(cancellationToken);
            }
            catch (RequestFailedException ex) when (TableFaults.IsTableGone(ex))
            {
                LogTableGone(_logger, table.Name, ex.Status, ex.ErrorCode ?? "none");
                await RecreateAsync(state, generation, cancellationToken);
            }

            return await operation(cancellationToken);
        }
        catch (Exception ex) when (TableFaults.AsUnavailable(ex, cancellationToken, table.Uri) is { } unavailable)
        {
            var failed = ex as RequestFailedException;
            LogUnavailable(_logger, table.Name, failed?.Status ?? 0, failed?.ErrorCode ?? "none", ex.GetType().Name);
            throw unavailable;
        }
    }

    /// <inheritdoc cref="RunAsync{T}"/>
    public async ValueTask RunAsync(TableClient table, Func<CancellationToken, ValueTask> operation, CancellationToken cancellationToken) =>
        await RunAsync(table, async ct =>
        {
            await operation(ct);
            return true;
        }, cancellationToken);

    /// <summary>
    /// The <c>/healthz</c> store check: one point read per table of a row that never exists, keys only, so a probe costs
    /// two cheap reads and writes nothing. A missing row (404 <c>ResourceNotFound</c>) is healthy; a missing table is
    /// not: the probe reports it (503) and re-creates the table, so the next probe is healthy again once that worked.
    /// </summary>
    public async Task CheckAsync(CancellationToken cancellationToken)
    {
        foreach (var state in new[] { _sessions, _tokenMarkers })
        {
            var generation = state.Generation;
            try
            {
                var probe = await state.Table.GetEntityIfExistsAsync<TableEntity>("!health", "!probe", KeysOnly, cancellationToken);
                if (!probe.HasValue)
                {
                    TableFaults.ThrowIfTableNotFound(probe.GetRawResponse());
                }
            }
            catch (RequestFailedException ex) when (TableFaults.IsTableGone(ex))
            {
                LogTableGone(_logger, state.Table.Name, ex.Status, ex.ErrorCode ?? "none");
                try
                {
                    await RecreateAsync(state, generation, cancellationToken);
                }
                catch (Exception createFailed) when (TableFaults.AsUnavailable(createFailed, cancellationToken, state.Table.Uri) is not null)
                {
                    // Reported below either way; the next probe or request tries again.
                }

                throw new DependencyUnavailableException(TableFaults.Dependency, $"Table {state.Table.Name} was missing ({ex.ErrorCode}).", null, ex);
            }
            catch (Exception ex) when (TableFaults.AsUnavailable(ex, cancellationToken, state.Table.Uri) is { } unavailable)
            {
                var failed = ex as RequestFailedException;
                LogUnavailable(_logger, state.Table.Name, failed?.Status ?? 0, failed?.ErrorCode ?? "none", ex.GetType().Name);
                throw unavailable;
            }
        }
    }

    private TableState StateOf(TableClient table) =>
        ReferenceEquals(table, _sessions.Table) ? _sessions
        : ReferenceEquals(table, _tokenMarkers.Table) ? _tokenMarkers
        : ReferenceEquals(table, _ssfStreams.Table) ? _ssfStreams
        : throw new ArgumentException("Not a table of this provisioner.", nameof(table));

    /// <summary>
    /// Re-creates the table of <paramref name="state"/>, unless a re-creation finished since the caller's operation
    /// started (<paramref name="seenGeneration"/>): then the caller only retries. Concurrent callers share the one
    /// creation in flight, so a lost table under load costs one create call, not one per request. The creation is not
    /// bound to one caller's cancellation (it serves all); each caller waits for it within its own budget.
    /// </summary>
    private Task RecreateAsync(TableState state, int seenGeneration, CancellationToken cancellationToken)
    {
        Task creation;
        lock (state)
        {
            if (state.Generation != seenGeneration)
            {
                return Task.CompletedTask;
            }

            if (state.Creating is not { IsCompleted: false } inFlight)
            {
                inFlight = CreateAsync(state);
                state.Creating = inFlight;
            }

            creation = inFlight;
        }

        return creation.WaitAsync(cancellationToken);
    }

    private async Task CreateAsync(TableState state)
    {
        // A 409 (exists already, or Azure's TableBeingDeleted) is no error for CreateIfNotExists; in the latter case the
        // retried operation meets the missing table again and fails closed with 503 until the name is free.
        if (Created(await state.Table.CreateIfNotExistsAsync(CancellationToken.None)) && ReferenceEquals(state, _sessions))
        {
            await TableSessionStore.MarkIndexedFromStartAsync(state.Table, CancellationToken.None);
        }

        lock (state)
        {
            state.Generation++;
        }

        LogTableCreated(_logger, state.Table.Name);
    }

    /// <summary>True when the call created the table (201, or 204 without the body); 409 when it was there already.</summary>
    private static bool Created(Response<global::Azure.Data.Tables.Models.TableItem> response) => response.GetRawResponse().Status is 201 or 204;

    private sealed class TableState(TableClient table)
    {
        public TableClient Table { get; } = table;

        /// <summary>Re-creations completed; read without the lock as a snapshot, written under it.</summary>
        public volatile int Generation;

        public Task? Creating;
    }

    [LoggerMessage(EventId = 8001, Level = LogLevel.Warning, Message = "Table {Table} is gone (status {Status}, error code {ErrorCode}); re-creating it and retrying once.")]
    private static partial void LogTableGone(ILogger logger, string table, int status, string errorCode);

    [LoggerMessage(EventId = 8002, Level = LogLevel.Warning, Message = "Table {Table} re-created.")]
    private static partial void LogTableCreated(ILogger logger, string table);

    [LoggerMessage(EventId = 8003, Level = LogLevel.Error, Message = "Table {Table} unavailable: status {Status}, error code {ErrorCode} ({ExceptionType}). Answered 503.")]
    private static partial void LogUnavailable(ILogger logger, string table, int status, string errorCode, string exceptionType);
}
