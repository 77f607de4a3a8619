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

        return WriteJsonAsync(context, status, writer =>
        {
            writer.WriteString("error", error);
            writer.WriteString("error_description", description);
        });
    }

    /// <summary>Writes a JSON object built by <paramref name="writeMembers"/>, with no-store.</summary>
    public static async Task WriteJsonAsync(
        HttpContext context, int status, Action<Utf8JsonWriter> writeMembers, string contentType = "application/json; charset=utf-8", string? cacheControl = null)
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
        var buffer = new ArrayBufferWriter<byte>(512);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writeMembers(writer);
            writer.WriteEndObject();
        }

        response.ContentLength = buffer.WrittenCount;
        await response.Body.WriteAsync(buffer.WrittenMemory, context.RequestAborted);
    }
}
