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

    public TableServiceClient Client => client;

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
                await client.CreateTableIfNotExistsAsync(TableNames.Sessions, cancellationToken);
                await client.CreateTableIfNotExistsAsync(TableNames.TokenMarkers, cancellationToken);
                _ready = true;
            }
        }
        finally
        {
            _gate.Release();
        }
    }
}
