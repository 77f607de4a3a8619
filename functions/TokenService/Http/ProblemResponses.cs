using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace TokenService.Http;

/// <summary>RFC 9457 problem details for the non-OAuth endpoints. Never carries exception text or secrets.</summary>
public static class ProblemResponses
{
    public static Task WriteAsync(HttpContext context, int status, string title, string detail, Action<Utf8JsonWriter>? extensions = null)
    {
        context.Response.Headers.CacheControl = "no-store";
        return OAuthResponses.WriteJsonAsync(context, status, writer =>
        {
            writer.WriteString("type", "about:blank");
            writer.WriteString("title", title);
            writer.WriteNumber("status", status);
            writer.WriteString("detail", detail);
            extensions?.Invoke(writer);
        }, "application/problem+json; charset=utf-8");
    }

    public static Task MethodNotAllowedAsync(HttpContext context, string allow)
    {
        context.Response.Headers.Allow = allow;
        return WriteAsync(context, StatusCodes.Status405MethodNotAllowed, "Method Not Allowed", $"This route accepts {allow}.");
    }

    public static Task NotFoundAsync(HttpContext context, string detail) =>
        WriteAsync(context, StatusCodes.Status404NotFound, "Not Found", detail);
}
