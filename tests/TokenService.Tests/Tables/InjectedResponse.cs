using Azure;
using Azure.Core;

namespace TokenService.Tests.Tables;

/// <summary>
/// A Table Storage answer made up by a test's pipeline transport (a fault), with an optional Retry-After and an optional
/// Table service error code (the <c>x-ms-error-code</c> header and the <c>odata.error</c> body the service sends).
/// </summary>
internal sealed class InjectedResponse(int status, string? retryAfter = null, string? errorCode = null) : Response
{
    private readonly HttpHeader[] _headers =
    [
        .. retryAfter is null ? [] : new[] { new HttpHeader("Retry-After", retryAfter) },
        .. errorCode is null ? [] : new[] { new HttpHeader("x-ms-error-code", errorCode), new HttpHeader("Content-Type", "application/json;odata=minimalmetadata") },
    ];

    public override int Status => status;
    public override string ReasonPhrase => "injected";

    public override Stream? ContentStream { get; set; } = new MemoryStream(errorCode is null
        ? "{}"u8.ToArray()
        : System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object>
        {
            ["odata.error"] = new { code = errorCode, message = new { lang = "en-US", value = "injected" } },
        }));

    public override string ClientRequestId { get; set; } = string.Empty;

    public override void Dispose()
    {
    }

    protected override bool ContainsHeader(string name) => Find(name) is not null;

    protected override IEnumerable<HttpHeader> EnumerateHeaders() => _headers;

    protected override bool TryGetHeader(string name, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out string? value)
    {
        value = Find(name);
        return value is not null;
    }

    protected override bool TryGetHeaderValues(string name, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out IEnumerable<string>? values)
    {
        values = Find(name) is { } value ? [value] : null;
        return values is not null;
    }

    private string? Find(string name) => _headers.FirstOrDefault(h => string.Equals(h.Name, name, StringComparison.OrdinalIgnoreCase)).Value;
}
