using System.Text.Json;

namespace TokenService.Tests.Infrastructure;

/// <summary>local.settings.json as Core Tools reads it: its <c>Values</c> become environment variables.</summary>
public static class LocalSettings
{
    public static Dictionary<string, string?> ReadSample() => Read(Path.Combine(TokenService.Tests.Tables.AzuriteFixture.FindRepositoryRoot(), "local.settings.sample.json"));

    public static Dictionary<string, string?> Read(string path)
    {
        using var json = JsonDocument.Parse(File.ReadAllText(path));
        return json.RootElement.GetProperty("Values").EnumerateObject().ToDictionary(p => p.Name, p => (string?)p.Value.GetString(), StringComparer.Ordinal);
    }

    /// <summary>Environment-variable names (<c>__</c>) as configuration keys (<c>:</c>), as the environment provider maps them.</summary>
    public static Dictionary<string, string?> ToConfiguration(IDictionary<string, string?> values) =>
        values.ToDictionary(p => p.Key.Replace("__", ":", StringComparison.Ordinal), p => p.Value, StringComparer.OrdinalIgnoreCase);
}
