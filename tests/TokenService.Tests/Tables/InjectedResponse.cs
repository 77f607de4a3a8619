using Azure;
using Azure.Core;

namespace TokenService.Tests.Tables;

/// <summary>A Table Storage answer made up by a test's pipeline transport (a fault), with an optional Retry-After.</summary>
internal sealed class InjectedResponse(int status, string? retryAfter = null) : Response
{
    public override int Status => status;
    public override string ReasonPhrase => "injected";
    public override Stream? ContentStream { get; set; } = new MemoryStream("{}"u8.ToArray());
    public override string ClientRequestId { get; set; } = string.Empty;

    public override void Dispose()
    {
    }

    protected override bool ContainsHeader(string name) => IsRetryAfter(name);

    protected override IEnumerable<HttpHeader> EnumerateHeaders() => retryAfter is null ? [] : [new HttpHeader("Retry-After", retryAfter)];

    protected override bool TryGetHeader(string name, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out string? value)
    {
        value = IsRetryAfter(name) ? retryAfter : null;
        return value is not null;
    }

    protected override bool TryGetHeaderValues(string name, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out IEnumerable<string>? values)
    {
        values = IsRetryAfter(name) ? [retryAfter!] : null;
        return values is not null;
    }

    private bool IsRetryAfter(string name) => retryAfter is not null && name == "Retry-After";
}
