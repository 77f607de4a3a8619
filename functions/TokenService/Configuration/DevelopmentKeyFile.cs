namespace TokenService.Configuration;

/// <summary>
/// Where the local development signing key lives (<c>Keys:DevelopmentKeyPath</c>). A relative setting resolves
/// against the host's content root, never against the current directory, so that one app finds one key file
/// wherever it is started from. Without a setting the file lives outside the source tree, under the user's local
/// application data, one file per application and issuer:
/// <c>&lt;LocalApplicationData&gt;/token-service/&lt;application name&gt;/&lt;issuer&gt;/signing-keys.json</c>
/// (Linux: <c>~/.local/share/token-service/TokenService.Server/http_127.0.0.1_7071/signing-keys.json</c>). Keyed by
/// issuer because two hosts of one user on different ports (two issuers) used to share one file: each rotation or
/// first start of one rewrote the JWKS the other published.
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
    /// <param name="issuer">The host's issuer (<c>TokenService:Issuer</c>): the default file is this issuer's own.</param>
    public static string Resolve(string? configured, string contentRootPath, string applicationName, string? localApplicationData = null, string? issuer = null)
    {
        var root = Path.GetFullPath(string.IsNullOrWhiteSpace(contentRootPath) ? AppContext.BaseDirectory : contentRootPath);
        if (!string.IsNullOrWhiteSpace(configured))
        {
            return Path.GetFullPath(configured, root);
        }

        var data = localApplicationData ?? Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.DoNotVerify);
        var folder = string.IsNullOrWhiteSpace(data) || !Path.IsPathFullyQualified(data)
            ? Path.Combine(root, ".devkeys") // no home folder (a bare container user): next to the app
            : Path.Combine(data, DataFolderName, FolderNameOf(applicationName));
        return string.IsNullOrWhiteSpace(issuer)
            ? Path.Combine(folder, FileName)
            : Path.Combine(folder, IssuerFolderName(issuer), FileName);
    }

    /// <summary>
    /// The issuer as one readable folder name: <c>http://127.0.0.1:7071</c> is <c>http_127.0.0.1_7071</c>. A long
    /// issuer is cut and ends with a hash of the whole, so that two issuers never share a folder.
    /// </summary>
    public static string IssuerFolderName(string issuer)
    {
        var invalid = Path.GetInvalidFileNameChars();
        var name = new string(issuer.Trim().TrimEnd('/').Replace("://", "_", StringComparison.Ordinal)
            .Select(c => invalid.Contains(c) || c is '/' or '\\' or ':' or '?' or '*' or '"' or '<' or '>' or '|' ? '_' : c).ToArray());
        if (name.Length <= 64 && name.Trim('.').Length > 0)
        {
            return name;
        }

        var hash = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(issuer)))[..12];
        return name[..Math.Min(name.Length, 48)].Trim('.') + "-" + hash;
    }

    /// <summary>The application name as one safe folder name.</summary>
    private static string FolderNameOf(string applicationName)
    {
        var invalid = Path.GetInvalidFileNameChars();
        var name = new string((applicationName ?? string.Empty).Trim().Select(c => invalid.Contains(c) || c == '/' || c == '\\' ? '_' : c).ToArray());
        return name.Length == 0 || name.All(c => c == '.') ? "app" : name;
    }
}
