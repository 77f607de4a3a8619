namespace TokenService.Configuration;

/// <summary>Configuration section <c>Storage</c>: Table Storage, or in-memory when neither key is set (docs/api.md, "Configuration").</summary>
public sealed class StorageOptions
{
    public const string SectionName = "Storage";

    public string? TableConnectionString { get; set; }
    public string? TableServiceUri { get; set; }

    /// <summary>How often expired sessions, refresh records and deny-list entries are purged.</summary>
    public TimeSpan CleanupInterval { get; set; } = TimeSpan.FromHours(1);

    public bool UsesTableStorage => !string.IsNullOrWhiteSpace(TableConnectionString) || !string.IsNullOrWhiteSpace(TableServiceUri);
}
