namespace TokenService.Configuration;

/// <summary>Configuration section <c>Keys</c>: signing keys and their lifecycle (docs/api.md, "Configuration" and "Keys and the JWKS").</summary>
public sealed class KeysOptions
{
    public const string SectionName = "Keys";

    /// <summary>The one-vault form: a Key Vault or Managed HSM URI. Not together with <see cref="Vaults"/>.</summary>
    public string? KeyVaultUri { get; set; }

    /// <summary>
    /// Several vaults or Managed HSM pools (<c>Keys__Vaults__N__Uri</c>), each holding its own key of
    /// <see cref="KeyName"/> with its own kid, rotating on its own staggered schedule; signing goes to the least-loaded
    /// healthy one. Not together with <see cref="KeyVaultUri"/>.
    /// </summary>
    public List<KeyVaultEndpointOptions> Vaults { get; set; } = [];

    /// <summary>
    /// Client-side limit of sign calls per vault in <see cref="SignWindow"/>, kept under the vault's documented limit:
    /// Key Vault Premium allows 2,000 HSM signs per 10 s for RSA-2048 and P-256 (500 for RSA-3072). A request finding
    /// the limit reached waits within its dependency budget instead of provoking a 429.
    /// </summary>
    public int SignsPerWindow { get; set; } = 2000;

    /// <summary>The window of <see cref="SignsPerWindow"/> (Key Vault's limits are per 10 seconds).</summary>
    public TimeSpan SignWindow { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// With several vaults, how long one sign call may take before the request fails over to another vault (its
    /// budget permitting). One vault: the pipeline's network timeout applies.
    /// </summary>
    public TimeSpan SignAttemptTimeout { get; set; } = TimeSpan.FromSeconds(3);

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

    /// <summary>
    /// Most keys published at once (pending, active and retired; per vault with <see cref="Vaults"/>), so that the JWKS
    /// every API downloads stays small and rotations on demand cannot make a vault key per call. A rotation asked for by
    /// an operator that would go beyond it is refused (409); revocation and the scheduled rotation never are.
    /// </summary>
    public int MaxPublishedKeys { get; set; } = 6;

    /// <summary>How often the rotation check runs in the standalone host.</summary>
    public TimeSpan CheckInterval { get; set; } = TimeSpan.FromDays(1);

    /// <summary>
    /// The longest validity (<c>exp</c> − creation) the vault accepts for a key, when an Azure Policy assignment of
    /// "Keys should have the specified maximum validity period" (49a22571-d204-4c91-a7b6-09b1a586fbc9) denies longer
    /// ones. Null: no maximum; keys still get an <c>exp</c> (<see cref="KeyValidity"/>).
    /// </summary>
    public TimeSpan? MaximumKeyValidity { get; set; }

    /// <summary>
    /// What a key needs to outlive every token it signs: published <see cref="PropagationTime"/> before it signs, signing
    /// for <see cref="RotationInterval"/>, published <see cref="RetentionTime"/> after (which covers the access-token
    /// lifetime and the JWKS cache age).
    /// </summary>
    public TimeSpan KeyLifetime => PropagationTime + RotationInterval + RetentionTime;

    /// <summary>
    /// The <c>exp</c> given to a new key, from its creation: <see cref="KeyLifetime"/> plus one <see cref="CheckInterval"/>
    /// (the rotation check that creates the successor may run that much after it is due), capped at
    /// <see cref="MaximumKeyValidity"/>, which start-up validation keeps at least <see cref="KeyLifetime"/>.
    /// </summary>
    public TimeSpan KeyValidity => MaximumKeyValidity is { } maximum && maximum < KeyLifetime + CheckInterval ? maximum : KeyLifetime + CheckInterval;

    /// <summary>File holding the local development keys (embedded default only; never used with Key Vault).</summary>
    public string? DevelopmentKeyPath { get; set; }

    public bool UsesKeyVault => !string.IsNullOrWhiteSpace(KeyVaultUri) || Vaults.Count > 0;

    /// <summary>The configured vaults in order: <see cref="KeyVaultUri"/> alone, else <see cref="Vaults"/>.</summary>
    public IReadOnlyList<KeyVaultEndpointOptions> EffectiveVaults =>
        !string.IsNullOrWhiteSpace(KeyVaultUri) ? [new KeyVaultEndpointOptions { Uri = KeyVaultUri }] : Vaults;

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

/// <summary>One entry of <c>Keys:Vaults</c>.</summary>
public sealed class KeyVaultEndpointOptions
{
    /// <summary><c>https://&lt;name&gt;.vault.azure.net/</c> or a Managed HSM pool, <c>https://&lt;name&gt;.managedhsm.azure.net/</c>.</summary>
    public string? Uri { get; set; }

    /// <summary>
    /// This vault's own client-side limit per <see cref="KeysOptions.SignWindow"/>, when it differs from
    /// <see cref="KeysOptions.SignsPerWindow"/> (a Managed HSM partition: about 900 RSA-2048 signs per second).
    /// </summary>
    public int? SignsPerWindow { get; set; }
}
