using System.Globalization;
using System.Text.Json;

namespace TokenService.Events;

/// <summary>One delivered event, whichever schema carried it (Event Grid or CloudEvents 1.0).</summary>
public sealed record IdpEventEnvelope(string Id, string Type, string? Source, DateTimeOffset? Time, JsonElement Data, string? DataContentType);

/// <summary>A body that is not a well-formed event delivery, or an event that cannot be verified.</summary>
public sealed class MalformedEventException : Exception
{
    public MalformedEventException()
        : this("The event delivery is malformed.")
    {
    }

    public MalformedEventException(string message)
        : base(message)
    {
    }

    public MalformedEventException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>
/// Reads an Event Grid webhook delivery: an array of Event Grid schema events, a CloudEvents 1.0 event
/// (<c>application/cloudevents+json</c>) or batch (<c>application/cloudevents-batch+json</c>, or a JSON array).
/// </summary>
public static class IdpEventEnvelopeReader
{
    public const int MaxBodyBytes = 1024 * 1024;

    public static IReadOnlyList<IdpEventEnvelope> Read(ReadOnlySpan<byte> body)
    {
        JsonDocument document;
        try
        {
            var reader = new Utf8JsonReader(body, new JsonReaderOptions { MaxDepth = 32 });
            document = JsonDocument.ParseValue(ref reader);
        }
        catch (JsonException)
        {
            throw new MalformedEventException("The body is not valid JSON.");
        }

        using (document)
        {
            var root = document.RootElement;
            var items = root.ValueKind switch
            {
                JsonValueKind.Array => root.EnumerateArray().ToList(),
                JsonValueKind.Object => [root],
                _ => throw new MalformedEventException("The body must be an event object or an array of events."),
            };
            if (items.Count is 0 or > 5000)
            {
                throw new MalformedEventException("A delivery holds 1 to 5000 events.");
            }

            return items.Select(ReadOne).ToList();
        }
    }

    public static IdpEventEnvelope ReadOne(JsonElement e)
    {
        if (e.ValueKind != JsonValueKind.Object)
        {
            throw new MalformedEventException("Every event must be a JSON object.");
        }

        if (e.TryGetProperty("specversion", out var specVersion))
        {
            // CloudEvents 1.0 JSON format: id, source, specversion and type are required.
            if (specVersion.ValueKind != JsonValueKind.String || specVersion.GetString() != "1.0")
            {
                throw new MalformedEventException("Only CloudEvents specversion 1.0 is supported.");
            }

            var data = e.TryGetProperty("data", out var d) ? d.Clone() : default;
            if (data.ValueKind == JsonValueKind.Undefined && e.TryGetProperty("data_base64", out var b64) && b64.ValueKind == JsonValueKind.String)
            {
                try
                {
                    data = JsonDocument.Parse(Convert.FromBase64String(b64.GetString()!)).RootElement.Clone();
                }
                catch (Exception ex) when (ex is FormatException or JsonException)
                {
                    data = JsonDocument.Parse(JsonSerializer.Serialize(b64.GetString())).RootElement.Clone();
                }
            }

            return new IdpEventEnvelope(
                Required(e, "id"), Required(e, "type"), Required(e, "source"), OptionalTime(e, "time"), data,
                e.TryGetProperty("datacontenttype", out var ct) && ct.ValueKind == JsonValueKind.String ? ct.GetString() : null);
        }

        if (e.TryGetProperty("eventType", out _))
        {
            // Event Grid schema: id, eventType, subject, eventTime, data, dataVersion.
            return new IdpEventEnvelope(
                Required(e, "id"), Required(e, "eventType"),
                e.TryGetProperty("topic", out var topic) && topic.ValueKind == JsonValueKind.String ? topic.GetString() : null,
                OptionalTime(e, "eventTime"), e.TryGetProperty("data", out var data) ? data.Clone() : default, null);
        }

        throw new MalformedEventException("An event is neither CloudEvents 1.0 nor Event Grid schema.");
    }

    private static string Required(JsonElement e, string name)
    {
        if (!e.TryGetProperty(name, out var value) || value.ValueKind != JsonValueKind.String || string.IsNullOrWhiteSpace(value.GetString()) || value.GetString()!.Length > 1024)
        {
            throw new MalformedEventException($"An event has no valid '{name}'.");
        }

        return value.GetString()!;
    }

    private static DateTimeOffset? OptionalTime(JsonElement e, string name)
    {
        if (!e.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (value.ValueKind == JsonValueKind.String && DateTimeOffset.TryParse(value.GetString(), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var time))
        {
            return time;
        }

        throw new MalformedEventException($"An event's '{name}' is not an RFC 3339 time.");
    }
}
