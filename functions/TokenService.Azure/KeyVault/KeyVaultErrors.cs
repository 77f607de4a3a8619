using System.Globalization;
using System.Text.Json;
using Azure;

namespace TokenService.Azure.KeyVault;

/// <summary>
/// What the keys clients (<see cref="Keys.KeyClient"/>, <see cref="Keys.Cryptography.CryptographyClient"/>) throw, as
/// the service's exceptions. They throw what Azure.Security.KeyVault.Keys' clients throw: <see cref="RequestFailedException"/> for an error answer (<see cref="RequestFailedException.Status"/>,
/// <see cref="RequestFailedException.ErrorCode"/> = the innermost <c>innererror.code</c>, the raw response attached), and
/// for a transport failure after the pipeline's retries (status 0, or an <see cref="AggregateException"/>), or a
/// <see cref="OperationCanceledException"/> for its network timeout. Here, and only here, that becomes:
/// <list type="bullet">
/// <item>401 (after the challenge), 408, 429, 5xx, status 0, a timeout: <see cref="DependencyUnavailableException"/>
/// (503) with the vault's <c>Retry-After</c>; the status travels in the inner <see cref="KeyVaultException"/> (a 429
/// opens the vault's shared backoff window, <see cref="VaultSignThrottle"/>);</item>
/// <item>an answer the client could not read (a 2xx whose body is not the documented JSON): the same, without status;</item>
/// <item>any other error answer: a <see cref="KeyVaultException"/> with the operation, Key Vault's outer code and the
/// innermost one, which <see cref="KeyVaultFaults"/> classifies.</item>
/// </list>
/// Every error answer is counted in <c>tokenservice.keyvault.errors</c> by operation, status and innermost code. A 404
/// the caller expects (a key with no version yet, a version deleted between a list and a get) is read by the caller
/// before it gets here and is not counted. Moving to the real package keeps this file; the clients go.
/// </summary>
internal static class KeyVaultErrors
{
    /// <summary>Whether <paramref name="error"/> is the client's to translate (not the caller's own cancellation).</summary>
    public static bool IsClientError(Exception error, CancellationToken cancellationToken) =>
        error is RequestFailedException or AggregateException || (error is OperationCanceledException && !cancellationToken.IsCancellationRequested);

    /// <summary>The service's exception for a client error (see <see cref="IsClientError"/>), counted in <paramref name="metrics"/> (the host's; none outside DI).</summary>
    public static Exception Translate(Exception error, string operation, TokenService.Diagnostics.TokenServiceMetrics? metrics)
    {
        if (error is not RequestFailedException { Status: > 0 } failed)
        {
            return new DependencyUnavailableException("keyvault", "Key Vault unreachable: " + error.GetType().Name, null, error);
        }

        if (failed.GetRawResponse() is not { } response || failed.Status is >= 200 and < 300)
        {
            // The client's own reading failed (a 200 that is not the documented JSON): the caller answers 503 and retries.
            return new DependencyUnavailableException("keyvault", failed.Message, null, failed);
        }

        var (code, innerCode, text) = Read(response.Content.ToMemory());
        var errorCode = failed.ErrorCode ?? innerCode ?? code;
        metrics?.KeyVaultError(operation, failed.Status, errorCode);
        var keyVaultError = new KeyVaultException(failed.Status, code, $"Key Vault answered {failed.Status} {errorCode} to {operation}: {text}", errorCode, operation, failed);
        if (failed.Status is 401 or 408 or 429 or >= 500)
        {
            TimeSpan? retryAfter = response.Headers.TryGetValue("Retry-After", out var value) && int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds)
                ? TimeSpan.FromSeconds(seconds)
                : null;
            return new DependencyUnavailableException("keyvault", $"Key Vault answered {failed.Status} {errorCode} to {operation}.", retryAfter, keyVaultError);
        }

        // 403 included: Key Vault answers it to a sign on a disabled key (KeyDisabled) and to a caller without the role or
        // access policy (ForbiddenByRbac, ForbiddenByPolicy). Neither is an outage: KeyVaultFaults decides.
        return keyVaultError;
    }

    /// <summary>
    /// Key Vault's error envelope: <c>{"error":{"code","message","innererror":{"code","innererror":…}}}</c>. The inner
    /// code says what happened (a 403's outer code is always "Forbidden"); the innermost one is kept, as the Azure SDK's
    /// <see cref="RequestFailedException.ErrorCode"/> does.
    /// </summary>
    public static (string? Code, string? InnerCode, string? Message) Read(ReadOnlyMemory<byte> content)
    {
        try
        {
            using var document = JsonDocument.Parse(content);
            if (document.RootElement.ValueKind != JsonValueKind.Object || !document.RootElement.TryGetProperty("error", out var error) || error.ValueKind != JsonValueKind.Object)
            {
                return default;
            }

            var code = StringOrNull(error, "code");
            var message = StringOrNull(error, "message");
            string? inner = null;
            var current = error;
            for (var depth = 0; depth < 8 && current.TryGetProperty("innererror", out var next) && next.ValueKind == JsonValueKind.Object; depth++)
            {
                inner = StringOrNull(next, "code") ?? inner;
                current = next;
            }

            return (code, inner, message);
        }
        catch (JsonException)
        {
            return default;
        }

        static string? StringOrNull(JsonElement element, string name) =>
            element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;
    }
}
