using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TokenService.Configuration;
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
    private readonly KeyVaultKeysClient _client;
    private readonly KeyVaultPlacement _placement;
    private readonly KeyVaultSigning _signing;

    /// <summary>The one vault of <c>Keys:KeyVaultUri</c>.</summary>
    public KeyVaultSigningKeyService(KeyVaultKeysClient client, IOptions<KeysOptions> options, TimeProvider time, ILogger<KeyVaultSigningKeyService> logger)
        : this(client, options.Value, new KeyVaultPlacement(0, 1, options.Value.SignsPerWindow, TimeSpan.FromSeconds(10)), time, logger)
    {
    }

    /// <summary>Vault <see cref="KeyVaultPlacement.Index"/> of <see cref="KeyVaultPlacement.Count"/>.</summary>
    public KeyVaultSigningKeyService(
        KeyVaultKeysClient client, KeysOptions options, KeyVaultPlacement placement, TimeProvider time, ILogger<KeyVaultSigningKeyService> logger, SigningKeyHealth? health = null)
        : base(options, time, logger)
    {
        _client = client;
        _health = health;
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
        var versions = await CallAsync("list", () => _client.ListKeyVersionsAsync(Options.KeyName, cancellationToken), cancellationToken);
        var keys = new List<StoredSigningKey>();
        foreach (var version in versions.Where(v => v.Enabled && v.Tags.ContainsKey(ActivateAtTag)))
        {
            if (_publicKeys.TryGetValue(version.Kid, out var stored))
            {
                // Material never changes; the expiry may (an operator, or a policy remediation): the list's is current.
                if (stored.Info.ExpiresAt != version.ExpiresOn)
                {
                    stored = stored with { Info = stored.Info with { ExpiresAt = version.ExpiresOn } };
                    _publicKeys[version.Kid] = stored;
                }
            }
            else
            {
                // Key material of a version never changes: fetched once per process.
                KeyVaultKey? bundle;
                try
                {
                    bundle = await CallAsync("get", () => _client.GetKeyAsync(Options.KeyName, version.Version, cancellationToken), cancellationToken);
                }
                catch (KeyVaultException ex) when (KeyVaultFaults.IsKeyGone(ex))
                {
                    continue; // disabled (revoked) between the list and this read: not published any more
                }

                if (bundle?.PublicJwk is null || (bundle.PublicJwk.Kty == "EC") != IsEc)
                {
                    continue;
                }

                stored = ToStored(bundle);
                _publicKeys[version.Kid] = stored;
            }

            keys.Add(stored);
        }

        return keys;
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
        var bundle = await CallAsync("create", () => IsEc
            ? _client.CreateKeyAsync(Options.KeyName, "EC-HSM", null, "P-256", tags, cancellationToken, notBefore, expiresOn)
            : _client.CreateKeyAsync(Options.KeyName, "RSA-HSM", 2048, null, tags, cancellationToken, notBefore, expiresOn), cancellationToken);
        return new NewSigningKey(bundle.Kid, Options.Algorithm, WithAlg(bundle.PublicJwk!), bundle.Created);
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

        var tags = ManagedTags();
        tags[ActivateAtTag] = seconds.ToString(CultureInfo.InvariantCulture);

        // Update replaces all tags: ManagedTags repeats the ones written at creation.
        var bundle = await CallAsync("update", () => _client.UpdateKeyAsync(Options.KeyName, VersionOf(key.ProviderKeyId), enabled: null, tags, cancellationToken), cancellationToken);
        var stored = ToStored(bundle);
        _publicKeys[bundle.Kid] = stored;
        return stored;
    }

    protected override async Task RemoveKeyAsync(KeyVersionInfo key, CancellationToken cancellationToken)
    {
        await CallAsync("update", () => _client.UpdateKeyAsync(Options.KeyName, VersionOf(key.ProviderKeyId), enabled: false, tags: null, cancellationToken), cancellationToken);
        _publicKeys.TryRemove(key.ProviderKeyId, out _);
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
    internal bool Holds(string providerKeyId) => _client.Owns(providerKeyId);

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
        return await CallAsync("sign", () => _client.SignAsync(key.ProviderKeyId, key.Algorithm, digest, cancellationToken), cancellationToken);
    }

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
            throw KeyVaultErrors.Translate(ex, operation, _client.Metrics);
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

    private static string VersionOf(string kid) => kid[(kid.LastIndexOf('/') + 1)..];

    private PublicJsonWebKey WithAlg(PublicJsonWebKey jwk) =>
        new() { Kty = jwk.Kty, N = jwk.N, E = jwk.E, Crv = jwk.Crv, X = jwk.X, Y = jwk.Y, Alg = Options.Algorithm, Use = "sig" };

    private StoredSigningKey ToStored(KeyVaultKey bundle)
    {
        var activatesAt = bundle.Tags.TryGetValue(ActivateAtTag, out var value) && long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds)
            ? DateTimeOffset.FromUnixTimeSeconds(seconds)
            : bundle.Created;
        return new StoredSigningKey(new KeyVersionInfo(bundle.Kid, bundle.Created, activatesAt, bundle.ExpiresOn), Options.Algorithm, WithAlg(bundle.PublicJwk!));
    }
}

/// <summary>Where a vault stands among the configured ones, and its sign limits.</summary>
/// <param name="Index">Position in <c>Keys:Vaults</c> (0 for <c>Keys:KeyVaultUri</c>): staggers the first rotation.</param>
/// <param name="Count">How many vaults sign.</param>
/// <param name="SignsPerWindow">This vault's client-side limit per <c>Keys:SignWindow</c>.</param>
/// <param name="MaxWait">The dependency budget: no request waits longer for a 429 backoff window.</param>
public sealed record KeyVaultPlacement(int Index, int Count, int SignsPerWindow, TimeSpan MaxWait);
