namespace TokenService.Azure.Tables;

/// <summary>Where a Table service is and, for SharedKey auth, the account's name and key.</summary>
public sealed record TableConnection(Uri Endpoint, string AccountName, byte[]? AccountKey)
{
    /// <summary>The emulator's documented well-known account (Azurite).</summary>
    public const string DevelopmentAccountName = "devstoreaccount1";

    private const string DevelopmentAccountKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    /// <summary>
    /// Parses an Azure Storage connection string: <c>UseDevelopmentStorage=true</c>, or
    /// <c>DefaultEndpointsProtocol</c>/<c>AccountName</c>/<c>AccountKey</c>/<c>EndpointSuffix</c> with an optional
    /// <c>TableEndpoint</c>. Throws <see cref="FormatException"/> naming what is missing (never echoing the key).
    /// </summary>
    public static TableConnection Parse(string connectionString)
    {
        var parts = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var segment in connectionString.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var eq = segment.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                throw new FormatException("Storage:TableConnectionString is not a connection string (expected key=value pairs separated by ';').");
            }

            parts[segment[..eq]] = segment[(eq + 1)..];
        }

        if (parts.TryGetValue("UseDevelopmentStorage", out var dev) && dev.Equals("true", StringComparison.OrdinalIgnoreCase))
        {
            var proxy = parts.TryGetValue("DevelopmentStorageProxyUri", out var p) ? p.TrimEnd('/') : "http://127.0.0.1";
            return new TableConnection(new Uri(proxy + ":10002/" + DevelopmentAccountName), DevelopmentAccountName, Convert.FromBase64String(DevelopmentAccountKey));
        }

        if (!parts.TryGetValue("AccountName", out var account) || string.IsNullOrWhiteSpace(account))
        {
            throw new FormatException("Storage:TableConnectionString has no AccountName.");
        }

        if (!parts.TryGetValue("AccountKey", out var key) || string.IsNullOrWhiteSpace(key))
        {
            throw new FormatException("Storage:TableConnectionString has no AccountKey (use Storage:TableServiceUri with a managed identity instead).");
        }

        byte[] keyBytes;
        try
        {
            keyBytes = Convert.FromBase64String(key);
        }
        catch (FormatException)
        {
            throw new FormatException("Storage:TableConnectionString has an AccountKey that is not base64.");
        }

        Uri endpoint;
        if (parts.TryGetValue("TableEndpoint", out var tableEndpoint))
        {
            endpoint = new Uri(tableEndpoint.TrimEnd('/'));
        }
        else
        {
            var protocol = parts.TryGetValue("DefaultEndpointsProtocol", out var proto) ? proto : "https";
            var suffix = parts.TryGetValue("EndpointSuffix", out var s) ? s : "core.windows.net";
            endpoint = new Uri($"{protocol}://{account}.table.{suffix}");
        }

        return new TableConnection(endpoint, account, keyBytes);
    }
}
