using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Primitives;
using Microsoft.Net.Http.Headers;

namespace TokenService.Http;

/// <summary>
/// Reads an OAuth request body: POST with <c>application/x-www-form-urlencoded</c> only (RFC 6749 §3.2),
/// bounded in size, and no parameter more than once unless the protocol allows it (RFC 8693 audience/resource).
/// </summary>
public static class FormRequest
{
    public const int MaxBodyBytes = 64 * 1024;

    private static readonly HashSet<string> Repeatable = new(StringComparer.Ordinal) { "audience", "resource" };

    public readonly record struct Result(IReadOnlyDictionary<string, StringValues>? Form, string? Error, int Status = StatusCodes.Status400BadRequest);

    public static async Task<Result> ReadAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        if (!MediaTypeHeaderValue.TryParse(request.ContentType, out var mediaType)
            || !mediaType.MediaType.Equals("application/x-www-form-urlencoded", StringComparison.OrdinalIgnoreCase))
        {
            return new(null, "The request body must be application/x-www-form-urlencoded.");
        }

        if (mediaType.Charset.HasValue && !mediaType.Charset.Equals("utf-8", StringComparison.OrdinalIgnoreCase))
        {
            return new(null, "The request body must be UTF-8.");
        }

        if (request.ContentLength > MaxBodyBytes)
        {
            return new(null, "The request body is too large.", StatusCodes.Status413PayloadTooLarge);
        }

        // Buffer the body up to the limit first: a larger body is refused without parsing any of it, and the
        // connection is closed rather than drained.
        using var body = new MemoryStream();
        var chunk = new byte[8192];
        int read;
        try
        {
            while ((read = await request.Body.ReadAsync(chunk, cancellationToken)) > 0)
            {
                if (body.Length + read > MaxBodyBytes)
                {
                    request.HttpContext.Response.Headers.Connection = "close";
                    return new(null, "The request body is too large.", StatusCodes.Status413PayloadTooLarge);
                }

                body.Write(chunk, 0, read);
            }
        }
        catch (BadHttpRequestException)
        {
            return new(null, "The request body could not be read.");
        }

        body.Position = 0;
        Dictionary<string, StringValues> form;
        try
        {
            using var reader = new FormReader(body)
            {
                ValueCountLimit = 64,
                KeyLengthLimit = 256,
                ValueLengthLimit = 16 * 1024,
            };
            form = await reader.ReadFormAsync(cancellationToken);
        }
        catch (InvalidDataException)
        {
            return new(null, "The request body exceeds the allowed size or number of parameters.", StatusCodes.Status413PayloadTooLarge);
        }

        foreach (var (name, values) in form)
        {
            if (values.Count > 1 && !Repeatable.Contains(name))
            {
                return new(null, $"The parameter '{Sanitize(name)}' appears more than once.");
            }

            foreach (var value in values)
            {
                if (value is not null && value.AsSpan().ContainsAnyInRange('\0', '\u001f'))
                {
                    return new(null, $"The parameter '{Sanitize(name)}' contains control characters.");
                }
            }
        }

        return new(form, null);
    }

    /// <summary>Returns one non-empty parameter value or null.</summary>
    public static string? Get(IReadOnlyDictionary<string, StringValues> form, string name) =>
        form.TryGetValue(name, out var values) && values.Count == 1 && !string.IsNullOrEmpty(values[0]) ? values[0] : null;

    /// <summary>Parameter names are echoed only as safe, short text.</summary>
    private static string Sanitize(string name) =>
        name.Length <= 64 && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.') ? name : "(invalid name)";
}
