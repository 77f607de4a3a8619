using Azure.Core;

namespace TokenService.Azure.KeyVault.Keys;

/// <summary>
/// Stands in for <c>Azure.Security.KeyVault.Keys.KeyClientOptions</c>. The retry settings differ from the SDK's defaults
/// (0.8 s first delay, 1 minute at most): a sign or key read waits within a request's dependency budget, so retries
/// start at 200 ms and wait 4 s at most, and a call that hangs gives up after 10 s. Moving to the SDK, these lines go to
/// where the host builds its options (<c>AzureAdapterServiceCollectionExtensions</c>).
/// </summary>
public sealed class KeyClientOptions : ClientOptions
{
    public KeyClientOptions()
    {
        Retry.MaxRetries = 3;
        Retry.Mode = RetryMode.Exponential;
        Retry.Delay = TimeSpan.FromMilliseconds(200);
        Retry.MaxDelay = TimeSpan.FromSeconds(4);
        Retry.NetworkTimeout = TimeSpan.FromSeconds(10);
    }

    /// <summary>Skip the check that a challenge's resource belongs to the vault's domain (in-test vaults only).</summary>
    public bool DisableChallengeResourceVerification { get; set; }
}
