using System.Buffers;
using System.Security.Cryptography;
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

    private const string FormMediaType = "application/x-www-form-urlencoded";

    /// <summary>The first buffer a body is read into; a larger body moves to a buffer twice the size, up to the limit.</summary>
    private const int InitialBufferBytes = 4096;

    private static readonly HashSet<string> Repeatable = new(StringComparer.Ordinal) { "audience", "resource" };

    public readonly record struct Result(IReadOnlyDictionary<string, StringValues>? Form, string? Error, int Status = StatusCodes.Status400BadRequest);

    public static async Task<Result> ReadAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        // The bare media type, as most clients send it, needs no parsing (it has no charset parameter); anything else is
        // parsed.
        if (!string.Equals(request.ContentType, FormMediaType, StringComparison.OrdinalIgnoreCase))
        {
            if (!MediaTypeHeaderValue.TryParse(request.ContentType, out var mediaType)
                || !mediaType.MediaType.Equals(FormMediaType, StringComparison.OrdinalIgnoreCase))
            {
                return new(null, "The request body must be application/x-www-form-urlencoded.");
            }

            if (mediaType.Charset.HasValue && !mediaType.Charset.Equals("utf-8", StringComparison.OrdinalIgnoreCase))
            {
                return new(null, "The request body must be UTF-8.");
            }
        }

        if (request.ContentLength > MaxBodyBytes)
        {
            return new(null, "The request body is too large.", StatusCodes.Status413PayloadTooLarge);
        }

        // Buffer the body up to the limit first: a larger body is refused without parsing any of it, and the
        // connection is closed rather than drained. The buffer is pooled (a token request's body is a few hundred
        // bytes; the first rental holds it), and it is read in the same buffer it is parsed from.
        var buffer = ArrayPool<byte>.Shared.Rent(InitialBufferBytes);
        var length = 0;
        try
        {
            try
            {
                int read;
                while ((read = await request.Body.ReadAsync(buffer.AsMemory(length, Math.Min(buffer.Length, MaxBodyBytes + 1) - length), cancellationToken)) > 0)
                {
                    length += read;
                    if (length > MaxBodyBytes)
                    {
                        request.HttpContext.Response.Headers.Connection = "close";
                        return new(null, "The request body is too large.", StatusCodes.Status413PayloadTooLarge);
                    }

                    if (length == buffer.Length)
                    {
                        var larger = ArrayPool<byte>.Shared.Rent(Math.Min(buffer.Length * 2, MaxBodyBytes + 1));
                        buffer.AsSpan(0, length).CopyTo(larger);
                        ReturnCleared(buffer, length);
                        buffer = larger;
                    }
                }
            }
            catch (BadHttpRequestException)
            {
                return new(null, "The request body could not be read.");
            }

            Dictionary<string, StringValues> form;
            try
            {
                using var body = new MemoryStream(buffer, 0, length, writable: false);
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

            return Check(form);
        }
        finally
        {
            ReturnCleared(buffer, length);
        }
    }

    /// <summary>The body holds client secrets and tokens: the part of a pooled buffer it filled is zeroed before the buffer goes back.</summary>
    private static void ReturnCleared(byte[] buffer, int used)
    {
        CryptographicOperations.ZeroMemory(buffer.AsSpan(0, Math.Min(used, buffer.Length)));
        ArrayPool<byte>.Shared.Return(buffer);
    }

    /// <summary>Refuses a parameter given twice (unless repeatable) and control characters in values.</summary>
    private static Result Check(Dictionary<string, StringValues> form)
    {
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
