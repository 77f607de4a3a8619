using System.Buffers;
using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace TokenService.Http;

/// <summary>
/// JSON responses of the OAuth endpoints. Every token response and error carries
/// <c>Cache-Control: no-store</c> (RFC 6749 §5.1); errors are RFC 6749 §5.2 JSON.
/// </summary>
public static class OAuthResponses
{
    public static void NoStore(HttpResponse response)
    {
        response.Headers.CacheControl = "no-store";
        response.Headers.Pragma = "no-cache";
    }

    public static Task WriteErrorAsync(HttpContext context, int status, string error, string description, string? wwwAuthenticate = null)
    {
        var response = context.Response;
        response.StatusCode = status;
        System.Diagnostics.Activity.Current?.SetTag(Diagnostics.TokenServiceDiagnostics.OAuthErrorTag, error);
        NoStore(response);
        if (wwwAuthenticate is not null)
        {
            response.Headers.WWWAuthenticate = wwwAuthenticate;
        }

        return WriteJsonAsync(context, status, (error, description), static (writer, s) =>
        {
            writer.WriteString("error", s.error);
            writer.WriteString("error_description", s.description);
        });
    }

    /// <summary>Writes a JSON object built by <paramref name="writeMembers"/>, with no-store.</summary>
    public static Task WriteJsonAsync(
        HttpContext context, int status, Action<Utf8JsonWriter> writeMembers, string contentType = "application/json; charset=utf-8", string? cacheControl = null) =>
        WriteJsonAsync(context, status, writeMembers, static (writer, write) => write(writer), contentType, cacheControl);

    /// <summary>
    /// Writes a JSON object built by <paramref name="writeMembers"/> from <paramref name="state"/>, with no-store: the
    /// form for the hot paths, whose static <paramref name="writeMembers"/> captures nothing.
    /// </summary>
    /// <remarks>
    /// The object is built on this thread's reusable writer and buffer, then copied into the response's pipe before
    /// anything is awaited, so the buffer is free again when this returns; it is zeroed after the copy (token responses
    /// hold tokens). The length is known before the body is written: the answer has a Content-Length, as before.
    /// </remarks>
    public static Task WriteJsonAsync<TState>(
        HttpContext context, int status, TState state, Action<Utf8JsonWriter, TState> writeMembers, string contentType = "application/json; charset=utf-8",
        string? cacheControl = null) =>
        WriteAsync(context, status, state, writeMembers, asArray: false, contentType, cacheControl);

    /// <summary>Writes a JSON array whose items <paramref name="writeItems"/> writes from <paramref name="state"/>, with no-store, as <see cref="WriteJsonAsync{TState}"/> writes an object.</summary>
    public static Task WriteJsonArrayAsync<TState>(HttpContext context, int status, TState state, Action<Utf8JsonWriter, TState> writeItems) =>
        WriteAsync(context, status, state, writeItems, asArray: true, "application/json; charset=utf-8", cacheControl: null);

    private static Task WriteAsync<TState>(
        HttpContext context, int status, TState state, Action<Utf8JsonWriter, TState> writeContent, bool asArray, string contentType, string? cacheControl)
    {
        var response = context.Response;
        response.StatusCode = status;
        if (cacheControl is null)
        {
            NoStore(response);
        }
        else
        {
            response.Headers.CacheControl = cacheControl;
        }

        response.ContentType = contentType;
        var buffer = t_buffer ??= new ArrayBufferWriter<byte>(2048);
        var writer = t_writer;
        if (writer is null)
        {
            t_writer = writer = new Utf8JsonWriter(buffer);
        }
        else
        {
            writer.Reset(buffer);
        }

        try
        {
            if (asArray)
            {
                writer.WriteStartArray();
                writeContent(writer, state);
                writer.WriteEndArray();
            }
            else
            {
                writer.WriteStartObject();
                writeContent(writer, state);
                writer.WriteEndObject();
            }
            writer.Flush();
            response.ContentLength = buffer.WrittenCount;
            response.BodyWriter.Write(buffer.WrittenSpan);
        }
        finally
        {
            buffer.Clear(); // zeroes what was written and makes the buffer empty again
            if (buffer.Capacity > MaxRetainedBytes)
            {
                // A rare large answer (a long session list) does not stay in memory for the life of the thread.
                t_buffer = null;
                t_writer = null;
            }
        }

        var flush = response.BodyWriter.FlushAsync(context.RequestAborted);
        if (flush.IsCompletedSuccessfully)
        {
            _ = flush.Result;
            return Task.CompletedTask;
        }

        return flush.AsTask();
    }

    /// <summary>The largest buffer a thread keeps between answers; token responses and errors need a few KB.</summary>
    private const int MaxRetainedBytes = 16 * 1024;

    // Per thread: a response is built synchronously on one thread and copied out before the first await.
    [ThreadStatic]
    private static ArrayBufferWriter<byte>? t_buffer;

    [ThreadStatic]
    private static Utf8JsonWriter? t_writer;
}
