using System.Globalization;
using System.Text.Json;
using TokenService.Validation.Jose;

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
    private const int MaxDepth = 32;

    public static IReadOnlyList<IdpEventEnvelope> Read(ReadOnlySpan<byte> body)
    {
        // The whole delivery is checked to be UTF-8 JSON text (RFC 8259 §8.1) whose strings and member names are all
        // Unicode before anything reads it: System.Text.Json parses "\ud800" and invalid UTF-8 inside strings and only
        // throws InvalidOperationException later, from whichever lookup or GetString first decodes them.
        if (!JsonText.IsWellFormed(body, MaxDepth))
        {
            throw new MalformedEventException("The body is not valid UTF-8 JSON.");
        }

        JsonDocument document;
        try
        {
            var reader = new Utf8JsonReader(body, new JsonReaderOptions { MaxDepth = MaxDepth });
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

            return items.Select(ReadWellFormed).ToList();
        }
    }

    /// <summary>Reads one event of a document that may not have been checked by <see cref="Read"/>.</summary>
    public static IdpEventEnvelope ReadOne(JsonElement e) =>
        JsonText.IsWellFormed(e, MaxDepth) ? ReadWellFormed(e) : throw new MalformedEventException("An event is not valid UTF-8 JSON.");

    // Every member is read through JsonText and checked for its kind: a number, array, object or null where the
    // schema has a string is a malformed event (400), not an InvalidOperationException.
    private static IdpEventEnvelope ReadWellFormed(JsonElement e)
    {
        if (e.ValueKind != JsonValueKind.Object)
        {
            throw new MalformedEventException("Every event must be a JSON object.");
        }

        if (e.TryGetProperty("specversion", out var specVersion))
        {
            // CloudEvents 1.0 JSON format: id, source, specversion and type are required.
            if (JsonText.GetStringOrNull(specVersion) != "1.0")
            {
                throw new MalformedEventException("Only CloudEvents specversion 1.0 is supported.");
            }

            var data = e.TryGetProperty("data", out var d) ? d.Clone() : default;
            if (data.ValueKind == JsonValueKind.Undefined && JsonText.GetStringOrNull(e, "data_base64") is { } b64)
            {
                data = ReadBase64Data(b64);
            }

            return new IdpEventEnvelope(
                Required(e, "id"), Required(e, "type"), Required(e, "source"), OptionalTime(e, "time"), data,
                JsonText.GetStringOrNull(e, "datacontenttype"));
        }

        if (e.TryGetProperty("eventType", out _))
        {
            // Event Grid schema: id, eventType, subject, eventTime, data, dataVersion.
            return new IdpEventEnvelope(
                Required(e, "id"), Required(e, "eventType"), JsonText.GetStringOrNull(e, "topic"),
                OptionalTime(e, "eventTime"), e.TryGetProperty("data", out var data) ? data.Clone() : default, null);
        }

        throw new MalformedEventException("An event is neither CloudEvents 1.0 nor Event Grid schema.");
    }

    // CloudEvents JSON format §3.1: data_base64 carries binary data. JSON inside it is used as the data when it is
    // well-formed UTF-8 JSON; anything else stays the base64 string, which no event type accepts as its data.
    private static JsonElement ReadBase64Data(string encoded)
    {
        byte[] bytes;
        try
        {
            bytes = Convert.FromBase64String(encoded);
        }
        catch (FormatException)
        {
            bytes = [];
        }

        if (bytes.Length > 0 && JsonText.IsWellFormed(bytes, MaxDepth))
        {
            using var inner = JsonDocument.Parse(bytes, new JsonDocumentOptions { MaxDepth = MaxDepth });
            return inner.RootElement.Clone();
        }

        using var text = JsonDocument.Parse(JsonSerializer.Serialize(encoded));
        return text.RootElement.Clone();
    }

    private static string Required(JsonElement e, string name)
    {
        if (JsonText.GetStringOrNull(e, name) is not { } value || string.IsNullOrWhiteSpace(value) || value.Length > 1024)
        {
            throw new MalformedEventException($"An event has no valid '{name}'.");
        }

        return value;
    }

    private static DateTimeOffset? OptionalTime(JsonElement e, string name)
    {
        if (!e.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (JsonText.GetStringOrNull(value) is { } text
            && DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var time))
        {
            return time;
        }

        throw new MalformedEventException($"An event's '{name}' is not an RFC 3339 time.");
    }
}
