using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Azure;
using Microsoft.Extensions.Options;
using TokenService.Azure.KeyVault.Keys;
using TokenService.Azure.KeyVault.Keys.Cryptography;
using TokenService.Configuration;
using TokenService.Diagnostics;
using TokenService.Keys;
using TokenService.Jwt;

namespace TokenService.Azure.KeyVault;

/// <summary>
/// Signing keys in Key Vault (HSM-backed: <c>RSA-HSM</c> 2048 for RS256/PS256, <c>EC-HSM</c> P-256 for ES256).
/// The private key never leaves the vault: the service hashes the JWS signing input and asks Key Vault to sign
/// the digest (one call per issued token). Each version of <c>Keys:KeyName</c> carries its activation time in
/// the tag <c>activate-at</c> (Unix seconds), so every instance derives the same lifecycle; a new version gets
/// that tag in a second call, once it exists, and is ignored until then; a removed key is
/// disabled (soft delete and purge protection keep it recoverable). Public keys are cached: JWKS and validation
/// make no Key Vault call. Sign calls pass a per-vault limiter and 429 backoff (<see cref="VaultSignThrottle"/>); with
/// several vaults (<see cref="MultiVaultSigningKeyService"/>) each vault is one instance of this class.
/// A 403 is not an outage (docs/key-vault.md, "Key Vault errors"): <c>KeyDisabled</c> on sign means another instance
/// revoked the key, so the key set is reloaded and the request signed with the current key
/// (<see cref="KeyVaultSignRouter"/>); any other 403 is the app's identity lacking a role or access policy, logged and
/// reported to <c>/healthz</c> once, naming the role, and remembered for <see cref="AccessDeniedRecheck"/> so that no
/// request calls the vault again for that operation meanwhile (no retry loop).
/// </summary>
public sealed partial class KeyVaultSigningKeyService : LifecycleSigningKeyService, IDisposable
{
    public const string ActivateAtTag = "activate-at";

    /// <summary>How long a refused operation (403 other than KeyDisabled) is answered from memory before it is tried again.</summary>
    public static readonly TimeSpan AccessDeniedRecheck = TimeSpan.FromMinutes(1);

    private readonly ConcurrentDictionary<string, (KeyVaultException Error, string Problem, DateTimeOffset RecheckAt)> _denied = new(StringComparer.Ordinal);
    private readonly SigningKeyHealth? _health;

    private readonly ConcurrentDictionary<string, StoredSigningKey> _publicKeys = new(StringComparer.Ordinal);
    /// <summary>One sign client per key version (made once: the SDK's reads its key on first use).</summary>
    private readonly ConcurrentDictionary<string, CryptographyClient> _signers = new(StringComparer.Ordinal);
    private readonly KeyClient _client;
    private readonly TokenServiceMetrics? _metrics;
    private readonly KeyVaultPlacement _placement;
    private readonly KeyVaultSigning _signing;

    /// <summary>The one vault of <c>Keys:KeyVaultUri</c>.</summary>
    public KeyVaultSigningKeyService(KeyClient client, IOptions<KeysOptions> options, TimeProvider time, ILogger<KeyVaultSigningKeyService> logger)
        : this(client, options.Value, new KeyVaultPlacement(0, 1, options.Value.SignsPerWindow, TimeSpan.FromSeconds(10)), time, logger)
    {
    }

    /// <summary>Vault <see cref="KeyVaultPlacement.Index"/> of <see cref="KeyVaultPlacement.Count"/>.</summary>
    /// <param name="client">The vault's keys client.</param>
    /// <param name="options">The keys options.</param>
    /// <param name="placement">Where the vault stands among the configured ones.</param>
    /// <param name="time">The clock.</param>
    /// <param name="logger">The logger.</param>
    /// <param name="health">Where a refused operation is reported for <c>/healthz</c>; none outside DI.</param>
    /// <param name="metrics">The host's metrics, for <c>tokenservice.keyvault.errors</c>; without them no error is counted.</param>
    public KeyVaultSigningKeyService(
        KeyClient client, KeysOptions options, KeyVaultPlacement placement, TimeProvider time, ILogger<KeyVaultSigningKeyService> logger,
        SigningKeyHealth? health = null, TokenServiceMetrics? metrics = null)
        : base(options, time, logger)
    {
        _client = client;
        _health = health;
        _metrics = metrics;
        _placement = placement;
        _signing = new KeyVaultSigning(placement.MaxWait, options.SignAttemptTimeout, time);
        Throttle = new VaultSignThrottle(placement.SignsPerWindow, options.SignWindow, placement.MaxWait, time);
    }

    internal VaultSignThrottle Throttle { get; }

    internal KeyVaultSigning Signing => _signing;

    /// <summary>Vault i of N records its first key as activated i × RotationInterval / N early: the vaults' rotations spread over the interval.</summary>
    protected override TimeSpan FirstKeyRotationLead =>
        TimeSpan.FromTicks(Options.RotationInterval.Ticks / _placement.Count * _placement.Index);

    /// <summary>Other instances' new keys are learnt well within the propagation time.</summary>
    protected override TimeSpan ReloadInterval
    {
        get
        {
            var quarter = TimeSpan.FromTicks(Options.PropagationTime.Ticks / 4);
            return quarter > TimeSpan.FromMinutes(5) ? TimeSpan.FromMinutes(5) : quarter < TimeSpan.FromSeconds(1) ? TimeSpan.FromSeconds(1) : quarter;
        }
    }

    private bool IsEc => !JwsAlgorithms.IsRsa(Options.Algorithm);

    protected override async Task<IReadOnlyList<StoredSigningKey>> LoadKeysAsync(CancellationToken cancellationToken)
    {
        var versions = await CallAsync("list", () => ListVersionsAsync(cancellationToken), cancellationToken);
        var keys = new List<StoredSigningKey>();
        foreach (var version in versions.Where(v => v.Enabled == true && v.Tags.ContainsKey(ActivateAtTag)))
        {
            var kid = KeyId(version);
            if (_publicKeys.TryGetValue(kid, out var stored))
            {
                // Material never changes; the expiry may (an operator, or a policy remediation): the list's is current.
                if (stored.Info.ExpiresAt != version.ExpiresOn)
                {
                    stored = stored with { Info = stored.Info with { ExpiresAt = version.ExpiresOn } };
                    _publicKeys[kid] = stored;
                }
            }
            else
            {
                // Key material of a version never changes: fetched once per process.
                KeyVaultKey? bundle;
                try
                {
                    bundle = await CallAsync("get", () => GetVersionAsync(version.Version!, cancellationToken), cancellationToken);
                }
                catch (KeyVaultException ex) when (KeyVaultFaults.IsKeyGone(ex))
                {
                    continue; // disabled (revoked) between the list and this read: not published any more
                }

                if (bundle is null || KeyVaultJwk.ToPublicJwk(bundle.Key) is not { } jwk || (jwk.Kty == "EC") != IsEc)
                {
                    continue;
                }

                stored = ToStored(bundle, jwk);
                _publicKeys[kid] = stored;
            }

            keys.Add(stored);
        }

        return keys;
    }

    /// <summary>Every version of the key, page after page; none when the key does not exist yet (404), not counted as an error.</summary>
    private async Task<List<KeyProperties>> ListVersionsAsync(CancellationToken cancellationToken)
    {
        var versions = new List<KeyProperties>();
        try
        {
            await foreach (var version in _client.GetPropertiesOfKeyVersionsAsync(Options.KeyName, cancellationToken))
            {
                versions.Add(version);
            }
        }
        catch (RequestFailedException ex) when (ex.Status == 404)
        {
            // No such key (yet): the versions read so far, if any, are all there is.
        }

        return versions;
    }

    /// <summary>One version with its public key; null when it is gone (404: deleted between the list and this read).</summary>
    private async Task<KeyVaultKey?> GetVersionAsync(string version, CancellationToken cancellationToken)
    {
        try
        {
            return (await _client.GetKeyAsync(Options.KeyName, version, cancellationToken)).Value;
        }
        catch (RequestFailedException ex) when (ex.Status == 404)
        {
            return null;
        }
    }

    protected override async Task<NewSigningKey> CreateKeyAsync(CancellationToken cancellationToken)
    {
        // Created without activate-at: LoadKeysAsync (on every instance) skips the version until PublishKeyAsync
        // tags it, so it is published only with an activation time read after it exists.
        var tags = ManagedTags();

        // exp and nbf on every key: where the built-in Azure Policy "Key Vault keys should have an
        // expiration date" (152b15f7-8e1f-4c1f-ab71-8c010ba5dbc0) denies, a key without exp is refused 403. exp covers
        // the key's whole life (KeysOptions.KeyValidity), within Keys:MaximumKeyValidity when a policy caps it; the
        // lifecycle stops signing with a key RetentionTime before its exp. nbf lies back by the clock skew that token
        // validation allows (Microsoft.IdentityModel's TokenValidationParameters.DefaultClockSkew, 5 minutes), so a
        // vault whose clock is a little behind ours still signs the new key's first signature.
        var now = Time.GetUtcNow();
        var notBefore = now - TimeSpan.FromMinutes(5);
        var expiresOn = DateTimeOffset.FromUnixTimeSeconds((now + Options.KeyValidity).ToUnixTimeSeconds());
        var bundle = (await CallAsync("create", () => IsEc
            ? _client.CreateEcKeyAsync(Describe(new CreateEcKeyOptions(Options.KeyName, hardwareProtected: true) { CurveName = KeyCurveName.P256 }), cancellationToken)
            : _client.CreateRsaKeyAsync(Describe(new CreateRsaKeyOptions(Options.KeyName, hardwareProtected: true) { KeySize = 2048 }), cancellationToken), cancellationToken)).Value;
        var jwk = KeyVaultJwk.ToPublicJwk(bundle.Key)
            ?? throw new DependencyUnavailableException("keyvault", $"Key Vault created a {bundle.KeyType} key without its public key.");
        return new NewSigningKey(KeyId(bundle.Properties), Options.Algorithm, WithAlg(jwk), bundle.Properties.CreatedOn ?? DateTimeOffset.MinValue);

        T Describe<T>(T options)
            where T : CreateKeyOptions
        {
            options.Enabled = true;
            options.NotBefore = notBefore;
            options.ExpiresOn = expiresOn;
            options.KeyOperations.Add(KeyOperation.Sign);
            options.KeyOperations.Add(KeyOperation.Verify);
            foreach (var (name, value) in tags)
            {
                options.Tags[name] = value;
            }

            return options;
        }
    }

    protected override async Task<StoredSigningKey> PublishKeyAsync(NewSigningKey key, DateTimeOffset activatesAt, CancellationToken cancellationToken)
    {
        // Whole seconds: a future activation rounds up, so that the tag never shortens the propagation time; one
        // due now (the first key) rounds down, so that it signs at once.
        var seconds = activatesAt.ToUnixTimeSeconds();
        if (activatesAt > Time.GetUtcNow() && DateTimeOffset.FromUnixTimeSeconds(seconds) < activatesAt)
        {
            seconds++;
        }

        // Update replaces all tags: ManagedTags repeats the ones written at creation.
        var properties = new KeyProperties(new Uri(key.ProviderKeyId));
        foreach (var (name, value) in ManagedTags())
        {
            properties.Tags[name] = value;
        }

        properties.Tags[ActivateAtTag] = seconds.ToString(CultureInfo.InvariantCulture);
        var bundle = (await CallAsync("update", () => _client.UpdateKeyPropertiesAsync(properties, cancellationToken), cancellationToken)).Value;
        var stored = ToStored(bundle, KeyVaultJwk.ToPublicJwk(bundle.Key) ?? key.PublicJwk);
        _publicKeys[stored.Info.ProviderKeyId] = stored;
        return stored;
    }

    protected override async Task RemoveKeyAsync(KeyVersionInfo key, CancellationToken cancellationToken)
    {
        // Only attributes.enabled: the version's tags stay as they are.
        await CallAsync("update", () => _client.UpdateKeyPropertiesAsync(new KeyProperties(new Uri(key.ProviderKeyId)) { Enabled = false }, cancellationToken), cancellationToken);
        _publicKeys.TryRemove(key.ProviderKeyId, out _);
        _signers.TryRemove(key.ProviderKeyId, out _);
    }

    /// <summary>Signs with <paramref name="key"/> of this vault: within the limiter, waiting out 429 backoff windows within the budget.</summary>
    public override async ValueTask<byte[]> SignAsync(SigningKey key, ReadOnlyMemory<byte> signingInput, CancellationToken cancellationToken) =>
        (await KeyVaultSignRouter.SignAsync([new(this, key)], _ => signingInput, _signing, cancellationToken)).Signature;

    public override async ValueTask<SignedInput> SignWithActiveKeyAsync(Func<SigningKey, ReadOnlyMemory<byte>> buildSigningInput, CancellationToken cancellationToken)
    {
        var key = (await GetKeySetAsync(cancellationToken)).Active ?? throw new DependencyUnavailableException("keys", "No active signing key.");
        return await KeyVaultSignRouter.SignAsync([new(this, key)], buildSigningInput, _signing, cancellationToken);
    }

    /// <summary>Whether a provider key id (a key version URL) is of this vault.</summary>
    internal bool Holds(string providerKeyId) =>
        Uri.TryCreate(providerKeyId, UriKind.Absolute, out var id) && KeyVaultKeyIdentifier.TryCreate(id, out var key)
        && Uri.Compare(key.VaultUri, _client.VaultUri, UriComponents.SchemeAndServer, UriFormat.Unescaped, StringComparison.OrdinalIgnoreCase) == 0;

    /// <summary>One sign call, no admission: the router has taken a permit.</summary>
    internal async Task<byte[]> SignOnceAsync(SigningKey key, ReadOnlyMemory<byte> signingInput, CancellationToken cancellationToken)
    {
        var digest = JwsAlgorithms.HashFor(key.Algorithm).Name switch
        {
            "SHA384" => SHA384.HashData(signingInput.Span),
            "SHA512" => SHA512.HashData(signingInput.Span),
            _ => SHA256.HashData(signingInput.Span),
        };

        // Key Vault returns ES256 signatures as R‖S (JOSE form) and RSA signatures as the raw octets.
        var signer = Signer(key.ProviderKeyId);
        var result = await CallAsync("sign", () => signer.SignAsync(new SignatureAlgorithm(key.Algorithm), digest, cancellationToken), cancellationToken);
        return result.Signature;
    }

    /// <summary>The sign client of a key version of this vault, made once.</summary>
    private CryptographyClient Signer(string providerKeyId) => _signers.TryGetValue(providerKeyId, out var signer) ? signer : _signers.GetOrAdd(
        providerKeyId,
        static (kid, service) => service.Holds(kid) && new KeyVaultKeyIdentifier(new Uri(kid)) is { Version: { } version } id
            ? service._client.GetCryptographyClient(id.Name, version)
            : throw new ArgumentException("The key id does not belong to this vault.", nameof(providerKeyId)),
        this);

    /// <summary>The key set reloaded after <paramref name="disabledKey"/> answered KeyDisabled: its active key (null: none).</summary>
    internal Task<SigningKey?> ActiveKeyAfterDisabledAsync(SigningKey disabledKey, CancellationToken cancellationToken) =>
        ReloadAfterKeyDisabledAsync(disabledKey, cancellationToken);

    /// <summary>
    /// One Key Vault call, with what a 403 other than KeyDisabled means: the app's identity may not do this. That is a
    /// configuration error no retry fixes, so it is logged and reported to <c>/healthz</c> once, naming the missing
    /// role, and remembered: until <see cref="AccessDeniedRecheck"/> has passed the operation fails at once without a
    /// call (requests answer 503 with that Retry-After; another vault, when there are several, signs instead). A later
    /// success clears it.
    /// </summary>
    private async Task<T> CallAsync<T>(string operation, Func<Task<T>> call, CancellationToken cancellationToken)
    {
        var now = Time.GetUtcNow();
        if (_denied.TryGetValue(operation, out var denied) && now < denied.RecheckAt)
        {
            throw new DependencyUnavailableException("keyvault", denied.Problem, denied.RecheckAt - now, denied.Error);
        }

        T result;
        try
        {
            result = await TranslatedAsync(operation, call, cancellationToken);
        }
        catch (KeyVaultException ex) when (KeyVaultFaults.Classify(ex) == KeyVaultFault.AccessDenied)
        {
            var problem = DescribeAccessDenied(ex, operation);
            var recheckAt = Time.GetUtcNow() + AccessDeniedRecheck;
            var previous = _denied.TryGetValue(operation, out var p) ? p : default;
            _denied[operation] = (ex, problem, recheckAt);
            _health?.Report(HealthSource(operation), problem);
            if (previous.Problem != problem || previous.RecheckAt <= now)
            {
                // Once per recheck interval, not once per request: requests in flight when it came back share the line.
                LogAccessDenied(Logger, problem, ex.Status, ex.ErrorCode ?? "(none)", operation);
            }

            throw new DependencyUnavailableException("keyvault", problem, AccessDeniedRecheck, ex);
        }
        catch (KeyVaultException ex) when (KeyVaultFaults.Classify(ex) == KeyVaultFault.Unavailable)
        {
            // 400, 409, 404 other than on sign, 401 after the challenge: fails closed like an outage (503 with
            // Retry-After), never as an unexpected error. A key gone (KeyDisabled, 404 on sign) goes to the caller as it
            // is: the router reloads the key set, a key read skips the version.
            throw KeyVaultFaults.Unavailable(ex, operation);
        }

        if (!_denied.IsEmpty && _denied.TryRemove(operation, out _))
        {
            _health?.Clear(HealthSource(operation));
            LogAccessRestored(Logger, operation, _client.VaultUri.Host);
        }

        return result;
    }

    /// <summary>The client's call, its Azure.Core exceptions (RequestFailedException …) translated by <see cref="KeyVaultErrors"/>.</summary>
    private async Task<T> TranslatedAsync<T>(string operation, Func<Task<T>> call, CancellationToken cancellationToken)
    {
        try
        {
            return await call();
        }
        catch (Exception ex) when (KeyVaultErrors.IsClientError(ex, cancellationToken))
        {
            throw KeyVaultErrors.Translate(ex, operation, _metrics);
        }
    }

    private string HealthSource(string operation) => $"{_client.VaultUri.Host} {operation}";

    /// <summary>
    /// One line an operator can act on. The roles are the ones the deployment grants (infra/modules/signingvault.bicep,
    /// docs/key-vault.md "Least privilege"): signing needs Key Vault Crypto User (keys/sign/action); creating, tagging,
    /// disabling, reading and listing key versions (the rotation check) Key Vault Crypto Officer; a Managed HSM's local
    /// role Managed HSM Crypto User covers both.
    /// </summary>
    private string DescribeAccessDenied(KeyVaultException ex, string operation)
    {
        var vault = _client.VaultUri.Host;
        var role = vault.EndsWith(".managedhsm.azure.net", StringComparison.OrdinalIgnoreCase) ? "Managed HSM Crypto User"
            : operation == "sign" ? "Key Vault Crypto User"
            : "Key Vault Crypto Officer";
        var code = ex.ErrorCode ?? "Forbidden";
        return code switch
        {
            KeyVaultErrorCodes.ForbiddenByRbac => $"key vault: {code} on {operation}: the app's identity lacks '{role}' on {vault}",
            KeyVaultErrorCodes.ForbiddenByPolicy when operation == "create" =>
                $"key vault: {code} on create: the access policy of {vault} does not grant the app's identity the key permission 'create', or an Azure Policy assignment denied the key (expiration date, maximum validity: set Keys:MaximumKeyValidity)",
            KeyVaultErrorCodes.ForbiddenByPolicy => $"key vault: {code} on {operation}: the access policy of {vault} does not grant the app's identity the key permission '{operation}'",
            _ => $"key vault: {code} on {operation}: {vault} refused the app's identity (403); check its '{role}' role and the vault's network rules",
        };
    }

    public void Dispose() => Throttle.Dispose();

    [LoggerMessage(EventId = 4013, Level = LogLevel.Error, Message = "{Problem} (Key Vault answered {Status} {ErrorCode} to {Operation}). Not retried for a minute: grant the role, no restart needed.")]
    private static partial void LogAccessDenied(ILogger logger, string problem, int status, string errorCode, string operation);

    [LoggerMessage(EventId = 4014, Level = LogLevel.Information, Message = "Key Vault {Vault} allows {Operation} again.")]
    private static partial void LogAccessRestored(ILogger logger, string operation, string vault);

    private Dictionary<string, string> ManagedTags() => new()
    {
        ["alg"] = Options.Algorithm,
        ["managed-by"] = "token-service",
    };

    /// <summary>A version's provider key id: its key id URL, as the list, get, create and update all spell it.</summary>
    private static string KeyId(KeyProperties properties) => properties.Id!.AbsoluteUri;

    private PublicJsonWebKey WithAlg(PublicJsonWebKey jwk) =>
        new() { Kty = jwk.Kty, N = jwk.N, E = jwk.E, Crv = jwk.Crv, X = jwk.X, Y = jwk.Y, Alg = Options.Algorithm, Use = "sig" };

    private StoredSigningKey ToStored(KeyVaultKey bundle, PublicJsonWebKey jwk)
    {
        var properties = bundle.Properties;
        var created = properties.CreatedOn ?? DateTimeOffset.MinValue;
        var activatesAt = properties.Tags.TryGetValue(ActivateAtTag, out var value) && long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds)
            ? DateTimeOffset.FromUnixTimeSeconds(seconds)
            : created;
        return new StoredSigningKey(new KeyVersionInfo(KeyId(properties), created, activatesAt, properties.ExpiresOn), Options.Algorithm, WithAlg(jwk));
    }
}

/// <summary>Where a vault stands among the configured ones, and its sign limits.</summary>
/// <param name="Index">Position in <c>Keys:Vaults</c> (0 for <c>Keys:KeyVaultUri</c>): staggers the first rotation.</param>
/// <param name="Count">How many vaults sign.</param>
/// <param name="SignsPerWindow">This vault's client-side limit per <c>Keys:SignWindow</c>.</param>
/// <param name="MaxWait">The dependency budget: no request waits longer for a 429 backoff window.</param>
public sealed record KeyVaultPlacement(int Index, int Count, int SignsPerWindow, TimeSpan MaxWait);
