using Azure.Data.Tables;

namespace TokenService.Azure.Tables.Stores;

/// <summary>The tables this service uses (infra/ creates them too; the stores create them if missing).</summary>
public static class TableNames
{
    public const string Sessions = "sessions";
    public const string TokenMarkers = "tokenmarkers";
}

/// <summary>Creates the tables once per process, retrying on the next use when the first attempt failed.</summary>
public sealed class TableProvisioner(TableServiceClient client)
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private volatile bool _ready;

    public TableClient Sessions { get; } = client.GetTableClient(TableNames.Sessions);

    public TableClient TokenMarkers { get; } = client.GetTableClient(TableNames.TokenMarkers);

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
                await Sessions.CreateIfNotExistsAsync(cancellationToken);
                await TokenMarkers.CreateIfNotExistsAsync(cancellationToken);
                _ready = true;
            }
        }
        finally
        {
            _gate.Release();
        }
    }
}
