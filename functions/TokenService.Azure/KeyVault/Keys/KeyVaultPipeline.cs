using System.Text.Json;
using System.Text.Json.Nodes;
using Azure;
using Azure.Core;
using Azure.Core.Pipeline;

namespace TokenService.Azure.KeyVault.Keys;

/// <summary>
/// The REST calls (api-version 7.5) <see cref="KeyClient"/> and <see cref="Cryptography.CryptographyClient"/> share, on
/// Azure.Core's <see cref="HttpPipeline"/> with the challenge policy. They fail as Azure.Security.KeyVault.Keys' clients
/// do: an error answer is <see cref="RequestFailedException"/> (Status, ErrorCode = the innermost <c>innererror.code</c>,
/// the raw response with its Retry-After), a transport failure after the pipeline's retries is Azure.Core's own
/// exception. 5xx and transport failures are retried by the pipeline; a 429 never is (<see cref="NoRetryOn429"/>), so
/// that the caller waits only as long as its request's budget allows, or answers 503 with that Retry-After at once. A
/// 200 whose body is not the documented JSON is a RequestFailedException with status 200 (the HTTP layer answers 503
/// and the caller retries); the SDK would throw its own parse error there.
/// </summary>
internal sealed class KeyVaultPipeline
{
    public const string ApiVersion = "7.5";

    private readonly HttpPipeline _pipeline;

    public KeyVaultPipeline(Uri vaultUri, TokenCredential credential, KeyClientOptions options)
    {
        VaultUri = vaultUri;
        Vault = vaultUri.AbsoluteUri.TrimEnd('/');
        _pipeline = HttpPipelineBuilder.Build(options, new KeyVaultChallengeAuthenticationPolicy(credential, !options.DisableChallengeResourceVerification));
    }

    public Uri VaultUri { get; }

    /// <summary>The vault's URL without its trailing slash, for building request URLs.</summary>
    public string Vault { get; }

    /// <summary>A call on a path of the vault (<c>/keys/…</c>).</summary>
    public Task<(JsonDocument Json, Response Response)> SendAsync(RequestMethod method, string path, JsonNode? body, CancellationToken cancellationToken) =>
        SendAsync(method, new Uri($"{Vault}{path}?api-version={ApiVersion}"), body, cancellationToken);

    /// <summary>A call on an absolute URL (a nextLink, which carries its own query).</summary>
    public async Task<(JsonDocument Json, Response Response)> SendAsync(RequestMethod method, Uri url, JsonNode? body, CancellationToken cancellationToken)
    {
        using var message = _pipeline.CreateMessage();
        message.ResponseClassifier = NoRetryOn429.Instance;

        message.Request.Method = method;
        message.Request.Uri.Reset(url);
        message.Request.Headers.SetValue("Accept", "application/json");
        if (body is not null)
        {
            message.Request.Content = RequestContent.Create(JsonSerializer.SerializeToUtf8Bytes(body));
            message.Request.Headers.SetValue("Content-Type", "application/json");
        }

        // A transport failure after the pipeline's retries is Azure.Core's RequestFailedException (status 0) or
        // AggregateException, a network timeout its OperationCanceledException: they go to the caller as they are.
        await _pipeline.SendAsync(message, cancellationToken);

        var response = message.Response;
        if (response.Status is 200 or 201)
        {
            try
            {
                return (JsonDocument.Parse(response.Content.ToMemory()), response);
            }
            catch (JsonException ex)
            {
                throw Malformed("JSON", ex);
            }
        }

        // Any other answer, 404 included, is an error, thrown as Azure.Security.KeyVault.Keys' clients throw it: Status,
        // and ErrorCode the innermost code of Key Vault's error envelope. KeyVaultErrors (in the signing service)
        // translates it.
        throw new RequestFailedException(response, null, InnermostErrorCode.Instance);
    }

    /// <summary>
    /// A 200 whose body is not what the REST reference documents (a gateway's HTML page, a truncated or changed body)
    /// is treated like an outage: the caller answers 503 and tries again later; no parse error escapes unhandled.
    /// </summary>
    public static RequestFailedException Malformed(string what, Exception inner) =>
        new(200, $"Key Vault answered 200 with a body that is not {what}: {inner.Message}", null, inner);

    /// <summary>Reads <paramref name="json"/> with <paramref name="read"/>; any reading error is <see cref="Malformed"/>.</summary>
    public static T Read<T>(JsonDocument json, string what, Func<JsonElement, T> read)
    {
        try
        {
            return read(json.RootElement);
        }
        catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException or FormatException or ArgumentException)
        {
            throw Malformed(what, ex);
        }
    }

    /// <summary>
    /// <see cref="RequestFailedException.ErrorCode"/> as the Azure SDK reports Key Vault's: the innermost
    /// <c>innererror.code</c> (a 403's outer code is always "Forbidden"), else <c>error.code</c>.
    /// </summary>
    private sealed class InnermostErrorCode : RequestFailedDetailsParser
    {
        public static readonly InnermostErrorCode Instance = new();

        public override bool TryParse(Response response, out ResponseError? error, out IDictionary<string, string>? data)
        {
            var (code, innerCode, message) = KeyVaultErrors.Read(response.Content.ToMemory());
            data = null;
            error = (innerCode ?? code) is { } errorCode ? new ResponseError(errorCode, message) : null;
            return error is not null;
        }
    }

    /// <summary>
    /// No call is retried by the pipeline on 429. For sign, each request retrying on its own schedule is the retry
    /// storm Key Vault's guidance warns about: the caller's throttle opens one backoff window shared by every request
    /// to the vault (or moves to another vault). For reads and key changes, Azure.Core would wait each Retry-After in
    /// full, unbounded by <c>MaxDelay</c>, three times over, holding a JWKS request or the rotation check far beyond
    /// the request's budget: the 429 and its Retry-After go to the caller, which serves cached keys or answers 503 with
    /// that Retry-After. 5xx and transport failures are still retried here. Here ours differs from the SDK's clients, whose
    /// pipeline retries a 429: moving to them has to keep this rule.
    /// </summary>
    private sealed class NoRetryOn429 : ResponseClassifier
    {
        public static readonly NoRetryOn429 Instance = new();

        public override bool IsRetriableResponse(HttpMessage message) => message.Response.Status != 429 && base.IsRetriableResponse(message);
    }
}
