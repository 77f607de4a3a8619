namespace TokenService.Configuration;

/// <summary>Configuration section <c>Keys</c>: signing keys and their lifecycle (CONTRACT §1, §4).</summary>
public sealed class KeysOptions
{
    public const string SectionName = "Keys";

    public string? KeyVaultUri { get; set; }

    /// <summary>
    /// Accept a Key Vault authentication challenge whose resource is not the vault's domain (the Azure SDK's
    /// <c>DisableChallengeResourceVerification</c>): only for a vault reached through another name, such as a proxy.
    /// </summary>
    public bool DisableChallengeResourceVerification { get; set; }
    public string KeyName { get; set; } = "token-signing";

    /// <summary><c>RS256</c> (default), <c>PS256</c> or <c>ES256</c>.</summary>
    public string Algorithm { get; set; } = "RS256";

    /// <summary>Age at which the active key is replaced.</summary>
    public TimeSpan RotationInterval { get; set; } = TimeSpan.FromDays(90);

    /// <summary>How long a new key is published before it signs, so that JWKS caches learn it first.</summary>
    public TimeSpan PropagationTime { get; set; } = TimeSpan.FromDays(2);

    /// <summary>How long a retired key stays published: at least the longest access-token lifetime plus the JWKS cache age.</summary>
    public TimeSpan RetentionTime { get; set; } = TimeSpan.FromDays(2);

    /// <summary>How often the rotation check runs in the standalone host.</summary>
    public TimeSpan CheckInterval { get; set; } = TimeSpan.FromDays(1);

    /// <summary>File holding the local development keys (embedded default only; never used with Key Vault).</summary>
    public string? DevelopmentKeyPath { get; set; }

    public bool UsesKeyVault => !string.IsNullOrWhiteSpace(KeyVaultUri);

    /// <summary>JWKS <c>Cache-Control: max-age</c>: half the propagation time, so every cache sees a new key before it signs; at most one hour.</summary>
    public TimeSpan JwksMaxAge
    {
        get
        {
            var half = TimeSpan.FromTicks(PropagationTime.Ticks / 2);
            return half > TimeSpan.FromHours(1) ? TimeSpan.FromHours(1) : half;
        }
    }
}
