using System.Text.Json;

namespace TokenService.Http;

internal static class JsonWriterExtensions
{
    /// <summary>A claim that is a string when single-valued and an array otherwise (RFC 7519 §4.1.3 <c>aud</c>).</summary>
    public static void WriteStringOrArray(this Utf8JsonWriter writer, string name, IReadOnlyList<string> values)
    {
        if (values.Count == 1)
        {
            writer.WriteString(name, values[0]);
            return;
        }

        writer.WriteStringArray(name, values);
    }

    public static void WriteStringArray(this Utf8JsonWriter writer, string name, IEnumerable<string> values)
    {
        writer.WriteStartArray(name);
        foreach (var value in values)
        {
            writer.WriteStringValue(value);
        }

        writer.WriteEndArray();
    }
}
