namespace TokenService.Configuration;

/// <summary>
/// Where the local development signing key lives (<c>Keys:DevelopmentKeyPath</c>). A relative setting resolves
/// against the host's content root, never against the current directory, so that one app finds one key file
/// wherever it is started from. Without a setting the file lives outside the source tree, under the user's local
/// application data: <c>&lt;LocalApplicationData&gt;/token-service/&lt;application name&gt;/signing-keys.json</c>
/// (Linux: <c>~/.local/share/token-service/TokenService.Server/signing-keys.json</c>).
/// </summary>
public static class DevelopmentKeyFile
{
    public const string FileName = "signing-keys.json";

    /// <summary>Folder under the local application data that holds one folder per application.</summary>
    public const string DataFolderName = "token-service";

    /// <param name="configured"><c>Keys:DevelopmentKeyPath</c> as configured (absolute or relative), or null.</param>
    /// <param name="contentRootPath">The host's content root (<c>IHostEnvironment.ContentRootPath</c>), absolute.</param>
    /// <param name="applicationName">The host's application name (<c>IHostEnvironment.ApplicationName</c>).</param>
    /// <param name="localApplicationData">The user's local application data folder; null for the current user's.</param>
    public static string Resolve(string? configured, string contentRootPath, string applicationName, string? localApplicationData = null)
    {
        var root = Path.GetFullPath(string.IsNullOrWhiteSpace(contentRootPath) ? AppContext.BaseDirectory : contentRootPath);
        if (!string.IsNullOrWhiteSpace(configured))
        {
            return Path.GetFullPath(configured, root);
        }

        var data = localApplicationData ?? Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.DoNotVerify);
        return string.IsNullOrWhiteSpace(data) || !Path.IsPathFullyQualified(data)
            ? Path.Combine(root, ".devkeys", FileName) // no home folder (a bare container user): next to the app
            : Path.Combine(data, DataFolderName, FolderNameOf(applicationName), FileName);
    }

    /// <summary>The application name as one safe folder name.</summary>
    private static string FolderNameOf(string applicationName)
    {
        var invalid = Path.GetInvalidFileNameChars();
        var name = new string((applicationName ?? string.Empty).Trim().Select(c => invalid.Contains(c) || c == '/' || c == '\\' ? '_' : c).ToArray());
        return name.Length == 0 || name.All(c => c == '.') ? "app" : name;
    }
}
