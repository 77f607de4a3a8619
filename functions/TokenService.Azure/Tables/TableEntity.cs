using System.Buffers;
using System.Globalization;
using System.Text.Json;

namespace TokenService.Azure.Tables;

/// <summary>
/// A table entity with typed properties: string, bool, int, long (Edm.Int64), double, DateTimeOffset
/// (Edm.DateTime), Guid (Edm.Guid) and byte[] (Edm.Binary). Types survive a round trip through the OData JSON
/// format via <c>@odata.type</c> annotations.
/// </summary>
public sealed class TableEntity(string partitionKey, string rowKey)
{
    public string PartitionKey { get; } = partitionKey;
    public string RowKey { get; } = rowKey;
    public string? ETag { get; init; }
    public DateTimeOffset? Timestamp { get; init; }
    public Dictionary<string, object?> Properties { get; } = new(StringComparer.Ordinal);

    public object? this[string name]
    {
        get => Properties.GetValueOrDefault(name);
        set => Properties[name] = value;
    }

    public string? GetString(string name) => this[name] as string;
    public long? GetInt64(string name) => this[name] switch { long l => l, int i => i, _ => null };
    public int? GetInt32(string name) => this[name] switch { int i => i, long l when l is >= int.MinValue and <= int.MaxValue => (int)l, _ => null };
    public bool? GetBoolean(string name) => this[name] as bool?;
    public DateTimeOffset? GetDateTimeOffset(string name) => this[name] as DateTimeOffset?;
    public byte[]? GetBinary(string name) => this[name] as byte[];
    public Guid? GetGuid(string name) => this[name] as Guid?;
    public double? GetDouble(string name) => this[name] switch { double d => d, int i => i, long l => l, _ => null };

    internal byte[] ToJson()
    {
        var buffer = new ArrayBufferWriter<byte>(512);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("PartitionKey", PartitionKey);
            writer.WriteString("RowKey", RowKey);
            foreach (var (name, value) in Properties)
            {
                switch (value)
                {
                    case null:
                        break;
                    case string s:
                        writer.WriteString(name, s);
                        break;
                    case bool b:
                        writer.WriteBoolean(name, b);
                        break;
                    case int i:
                        writer.WriteNumber(name, i);
                        break;
                    case double d:
                        writer.WriteNumber(name, d);
                        break;
                    case long l:
                        writer.WriteString(name + "@odata.type", "Edm.Int64");
                        writer.WriteString(name, l.ToString(CultureInfo.InvariantCulture));
                        break;
                    case DateTimeOffset dto:
                        writer.WriteString(name + "@odata.type", "Edm.DateTime");
                        writer.WriteString(name, dto.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture));
                        break;
                    case Guid g:
                        writer.WriteString(name + "@odata.type", "Edm.Guid");
                        writer.WriteString(name, g.ToString("D"));
                        break;
                    case byte[] bytes:
                        writer.WriteString(name + "@odata.type", "Edm.Binary");
                        writer.WriteString(name, Convert.ToBase64String(bytes));
                        break;
                    default:
                        throw new NotSupportedException($"Property {name} has unsupported type {value.GetType().Name}.");
                }
            }

            writer.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }

    internal static TableEntity FromJson(JsonElement element, string? etagHeader = null)
    {
        var types = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var property in element.EnumerateObject())
        {
            if (property.Name.EndsWith("@odata.type", StringComparison.Ordinal) && property.Value.ValueKind == JsonValueKind.String)
            {
                types[property.Name[..^"@odata.type".Length]] = property.Value.GetString()!;
            }
        }

        string? etag = etagHeader;
        DateTimeOffset? timestamp = null;
        string pk = string.Empty, rk = string.Empty;
        var values = new List<(string, object?)>();
        foreach (var property in element.EnumerateObject())
        {
            var name = property.Name;
            var value = property.Value;
            if (name.Contains('@', StringComparison.Ordinal) || name.StartsWith("odata.", StringComparison.Ordinal))
            {
                if (name == "odata.etag")
                {
                    etag ??= value.GetString();
                }

                continue;
            }

            switch (name)
            {
                case "PartitionKey":
                    pk = value.GetString()!;
                    continue;
                case "RowKey":
                    rk = value.GetString()!;
                    continue;
                case "Timestamp":
                    timestamp = DateTimeOffset.Parse(value.GetString()!, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal);
                    continue;
            }

            object? typed = types.GetValueOrDefault(name) switch
            {
                "Edm.Int64" => long.Parse(value.GetString()!, CultureInfo.InvariantCulture),
                "Edm.DateTime" => DateTimeOffset.Parse(value.GetString()!, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal),
                "Edm.Guid" => Guid.Parse(value.GetString()!),
                "Edm.Binary" => Convert.FromBase64String(value.GetString()!),
                "Edm.Double" => value.ValueKind == JsonValueKind.String ? double.Parse(value.GetString()!, CultureInfo.InvariantCulture) : value.GetDouble(),
                _ => value.ValueKind switch
                {
                    JsonValueKind.String => value.GetString(),
                    JsonValueKind.True => true,
                    JsonValueKind.False => false,
                    JsonValueKind.Number when value.TryGetInt32(out var i) => i,
                    JsonValueKind.Number => value.GetDouble(),
                    _ => null,
                },
            };
            values.Add((name, typed));
        }

        var entity = new TableEntity(pk, rk) { ETag = etag, Timestamp = timestamp };
        foreach (var (name, typed) in values)
        {
            entity[name] = typed;
        }

        return entity;
    }
}
