using System.Text.Json;
using Azure.Messaging;
using Azure.Messaging.EventGrid;
using TokenService.Jwt;

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
/// The envelopes are parsed by Azure.Messaging.EventGrid (<see cref="EventGridEvent.ParseMany"/>,
/// <see cref="CloudEvent.ParseMany"/>), which knows both schemas' required members and formats; our own code reads
/// only what the SDK does not know: the <c>data</c> of our schema, Graph and Auth0 payloads, and SETs.
/// </summary>
public static class IdpEventEnvelopeReader
{
    public const int MaxBodyBytes = 1024 * 1024;
    public const int MaxEventsPerDelivery = 5000;
    private const int MaxDepth = 32;
    private const int MaxIdLength = 1024;

    public static IReadOnlyList<IdpEventEnvelope> Read(ReadOnlySpan<byte> body)
    {
        // The whole delivery is checked to be UTF-8 JSON text (RFC 8259 §8.1) whose strings and member names are all
        // Unicode before anything reads it: System.Text.Json (and so the SDK) parses "\ud800" and invalid UTF-8 inside
        // strings and only throws InvalidOperationException later, from whichever lookup first decodes them.
        if (!JsonText.IsWellFormed(body, MaxDepth))
        {
            throw new MalformedEventException("The body is not valid UTF-8 JSON.");
        }

        bool cloudEvents;
        int count;
        using (var document = JsonDocument.Parse(body.ToArray(), new JsonDocumentOptions { MaxDepth = MaxDepth }))
        {
            var root = document.RootElement;
            var items = root.ValueKind switch
            {
                JsonValueKind.Array => root.EnumerateArray().ToList(),
                JsonValueKind.Object => [root],
                _ => throw new MalformedEventException("The body must be an event object or an array of events."),
            };
            count = items.Count;
            if (count is 0 or > MaxEventsPerDelivery)
            {
                throw new MalformedEventException($"A delivery holds 1 to {MaxEventsPerDelivery} events.");
            }

            if (items.Any(i => i.ValueKind != JsonValueKind.Object))
            {
                throw new MalformedEventException("Every event must be a JSON object.");
            }

            // One schema per delivery (an Event Grid subscription delivers one): CloudEvents carry specversion.
            cloudEvents = items[0].TryGetProperty("specversion", out _);
            if (items.Any(i => i.TryGetProperty("specversion", out _) != cloudEvents))
            {
                throw new MalformedEventException("A delivery mixes CloudEvents and Event Grid schema events.");
            }

            if (!cloudEvents && !items.All(i => i.TryGetProperty("eventType", out _)))
            {
                throw new MalformedEventException("An event is neither CloudEvents 1.0 nor Event Grid schema.");
            }
        }

        var json = BinaryData.FromBytes(body.ToArray());
        try
        {
            return cloudEvents
                ? CloudEvent.ParseMany(json).Select(FromCloudEvent).ToList()
                : EventGridEvent.ParseMany(json).Select(FromEventGridEvent).ToList();
        }
        catch (Exception ex) when (ex is ArgumentException or FormatException or JsonException or InvalidOperationException or NotSupportedException or OverflowException)
        {
            // The SDK's validation of the schemas' required members and formats (RFC 3339 times, specversion 1.0).
            throw new MalformedEventException("An event is not a valid " + (cloudEvents ? "CloudEvents 1.0" : "Event Grid schema") + " event.", ex);
        }
    }

    private static IdpEventEnvelope FromCloudEvent(CloudEvent e) =>
        new(Checked(e.Id, "id"), Checked(e.Type, "type"), Checked(e.Source, "source"), e.Time, DataOf(e.Data, base64: true), e.DataContentType);

    private static IdpEventEnvelope FromEventGridEvent(EventGridEvent e) =>
        new(Checked(e.Id, "id"), Checked(e.EventType, "eventType"), e.Topic, e.EventTime, DataOf(e.Data, base64: false), null);

    private static string Checked(string? value, string name) =>
        string.IsNullOrWhiteSpace(value) || value.Length > MaxIdLength ? throw new MalformedEventException($"An event has no valid '{name}'.") : value;

    /// <summary>
    /// The event's data as JSON: JSON data as it is (CloudEvents JSON format §3.1: <c>data</c>); binary data
    /// (<c>data_base64</c>) as the JSON it holds when it is well-formed UTF-8 JSON, else as its base64 text, which no
    /// event type accepts as its data (a SET in <c>data_base64</c> is the SET's compact text).
    /// </summary>
    private static JsonElement DataOf(BinaryData? data, bool base64)
    {
        if (data is null)
        {
            return default;
        }

        var bytes = data.ToMemory();
        if (bytes.Length > 0 && JsonText.IsWellFormed(bytes.Span, MaxDepth))
        {
            try
            {
                using var inner = JsonDocument.Parse(bytes, new JsonDocumentOptions { MaxDepth = MaxDepth });
                return inner.RootElement.Clone();
            }
            catch (JsonException) when (base64)
            {
                // Binary data that is not JSON: kept as text below.
            }
            catch (JsonException ex)
            {
                throw new MalformedEventException("An event's data is not valid JSON.", ex);
            }
        }
        else if (!base64)
        {
            throw new MalformedEventException("An event's data is not valid JSON.");
        }

        using var text = JsonDocument.Parse(JsonSerializer.Serialize(System.Text.Encoding.UTF8.GetString(bytes.Span)));
        return text.RootElement.Clone();
    }
}
