using Azure.Core;
using Azure.Data.Tables;
using TokenService.Configuration;

namespace TokenService.Azure.Tables;

/// <summary>
/// Builds the Azure.Data.Tables client from <see cref="StorageOptions"/>: a connection string (an account key, a
/// SAS, or <c>UseDevelopmentStorage=true</c> for Azurite) or a service URI with an Entra ID credential (the
/// function app's managed identity).
/// </summary>
public static class TableStorage
{
    /// <summary>
    /// The SDK's defaults retry for minutes (1 minute maximum delay, 100 s network timeout); a token request
    /// must fail closed quickly instead, so: 3 retries, exponential from 200 ms, at most 2 s between tries
    /// (about 1.4 s of back-off in all), and 10 s for one try.
    /// Two per-request policies go, because nothing reads what they produce (docs/performance.md, "Table Storage
    /// path"): the SDK's request/response logging (to its AzureEventSource, which this service never listens to; our
    /// own logs name every failure, TableProvisioner) and the telemetry User-Agent header. Distributed tracing stays
    /// on: it carries the caller's trace context to Storage, and without a listener it is a flag check.
    /// </summary>
    public static TableClientOptions DefaultOptions()
    {
        var options = new TableClientOptions();
        options.Diagnostics.IsLoggingEnabled = false;
        options.Diagnostics.IsTelemetryEnabled = false;
        options.Retry.MaxRetries = 3;
        options.Retry.Mode = RetryMode.Exponential;
        options.Retry.Delay = TimeSpan.FromMilliseconds(200);
        options.Retry.MaxDelay = TimeSpan.FromSeconds(2);
        options.Retry.NetworkTimeout = TimeSpan.FromSeconds(10);
        return options;
    }

    /// <param name="storage">The <c>Storage</c> section; <see cref="StorageOptions.UsesTableStorage"/> must hold.</param>
    /// <param name="credential">Asked for only when the URI form is used.</param>
    /// <param name="options">Defaults to <see cref="DefaultOptions"/>.</param>
    public static TableServiceClient CreateClient(StorageOptions storage, Func<TokenCredential> credential, TableClientOptions? options = null)
    {
        options ??= DefaultOptions();
        if (!string.IsNullOrWhiteSpace(storage.TableConnectionString))
        {
            try
            {
                return new TableServiceClient(storage.TableConnectionString, options);
            }
            catch (Exception ex) when (ex is FormatException or InvalidOperationException or ArgumentException)
            {
                // The SDK's message may quote the connection string, account key included: name the setting only, and keep
                // no inner exception, which would carry that message into every log of this one.
                throw new FormatException("Storage:TableConnectionString is not a valid Azure Storage connection string.");
            }
        }

        if (!Uri.TryCreate(storage.TableServiceUri, UriKind.Absolute, out var serviceUri))
        {
            throw new FormatException("Storage:TableServiceUri is not an absolute URI.");
        }

        return new TableServiceClient(serviceUri, credential(), options);
    }
}
