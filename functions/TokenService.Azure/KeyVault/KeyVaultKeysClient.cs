using System.Text.Json;
using System.Text.Json.Nodes;
using Azure;
using Azure.Core;
using Azure.Core.Pipeline;
using TokenService.Jwt;

namespace TokenService.Azure.KeyVault;

/// <summary>A key version as Key Vault returns it: full key id, public JWK, attributes and tags.</summary>
public sealed record KeyVaultKey(string Kid, string Version, PublicJsonWebKey? PublicJwk, bool Enabled, DateTimeOffset Created, IReadOnlyDictionary<string, string> Tags)
{
    /// <summary><c>attributes.exp</c>: no signing on or after it (Key Vault, "About keys", date-time attributes). Null: none.</summary>
    public DateTimeOffset? ExpiresOn { get; init; }

    /// <summary><c>attributes.nbf</c>: no signing before it. Null: none.</summary>
    public DateTimeOffset? NotBefore { get; init; }
}

/// <summary>
/// A Key Vault error that is not an outage (bad request, forbidden, conflict), as the signing service reads the client's
/// <see cref="RequestFailedException"/> (<see cref="KeyVaultErrors"/>): <see cref="Status"/> and <see cref="ErrorCode"/>,
/// the innermost code of Key Vault's error envelope (<c>error.innererror.code</c>: <c>KeyDisabled</c>,
/// <c>ForbiddenByRbac</c>, <c>ForbiddenByPolicy</c> …) when there is one, else <c>error.code</c>, as the Azure SDK reports
/// it; <see cref="Code"/>, the outer code, and <see cref="Operation"/>. <see cref="KeyVaultFaults"/> classifies it.
/// </summary>
public sealed class KeyVaultException(int status, string? code, string message, string? errorCode = null, string? operation = null) : Exception(message)
{
    public KeyVaultException()
        : this(0, null, "Key Vault request failed.")
    {
    }

    public KeyVaultException(string message)
        : this(0, null, message)
    {
    }

    public KeyVaultException(string message, Exception innerException)
        : this(0, null, message + " " + innerException.Message)
    {
    }

    public int Status { get; } = status;

    /// <summary>The outer <c>error.code</c> (a 403 is always "Forbidden").</summary>
    public string? Code { get; } = code;

    /// <summary>The innermost error code: what the error is (<c>KeyDisabled</c>, <c>ForbiddenByRbac</c> …).</summary>
    public string? ErrorCode { get; } = errorCode ?? code;

    /// <summary>The client operation that failed: create, get, list, update or sign.</summary>
    public string? Operation { get; } = operation;

    /// <summary>A sign (or get) on a disabled key version: the key was revoked or removed, not a fault of the vault.</summary>
    public bool IsKeyDisabled => Status == 403 && string.Equals(ErrorCode, KeyVaultErrorCodes.KeyDisabled, StringComparison.Ordinal);

    /// <summary>A 403 that is not about the key: the caller's identity may not do this (role, access policy, network rule).</summary>
    public bool IsAccessDenied => Status == 403 && !IsKeyDisabled;
}

/// <summary>Key Vault's inner error codes the service acts on (Key Vault REST reference, "Common error codes").</summary>
public static class KeyVaultErrorCodes
{
    public const string KeyDisabled = "KeyDisabled";
    public const string ForbiddenByRbac = "ForbiddenByRbac";
    public const string ForbiddenByPolicy = "ForbiddenByPolicy";
    public const string Throttled = "Throttled";
}

public sealed class KeyVaultClientOptions : ClientOptions
{
    public KeyVaultClientOptions()
    {
        Retry.MaxRetries = 3;
        Retry.Mode = RetryMode.Exponential;
        Retry.Delay = TimeSpan.FromMilliseconds(200);
        Retry.MaxDelay = TimeSpan.FromSeconds(4);
        Retry.NetworkTimeout = TimeSpan.FromSeconds(10);
    }

    /// <summary>Skip the check that a challenge's resource belongs to the vault's domain (in-test vaults only).</summary>
    public bool DisableChallengeResourceVerification { get; set; }

    /// <summary>The host's metrics, for <c>tokenservice.keyvault.errors</c>; without them (a client built outside DI) no error is counted.</summary>
    public TokenService.Diagnostics.TokenServiceMetrics? Metrics { get; set; }
}

/// <summary>
/// A small typed Key Vault keys client on Azure.Core's <see cref="HttpPipeline"/> (REST api-version 7.5): create,
/// get, list versions, update and sign, standing in for Azure.Security.KeyVault.Keys (not served here). It fails as
/// that package's clients do: an error answer is <see cref="RequestFailedException"/> (Status, ErrorCode = the innermost
/// <c>innererror.code</c>, the raw response with its Retry-After), a transport failure after the pipeline's retries is
/// Azure.Core's own exception. The signing service translates them (<see cref="KeyVaultErrors"/>) and classifies
/// (<see cref="KeyVaultFaults"/>): signing fails closed, never falls back. 5xx and transport failures are retried by
/// the pipeline; a 429 never is (<see cref="NoRetryOn429"/>), so that the caller waits only as long as its request's
/// budget allows, or answers 503 with that Retry-After at once. A 200 whose body is not the documented JSON is a
/// RequestFailedException with status 200 (the HTTP layer answers 503 and the caller retries).
/// </summary>
public sealed class KeyVaultKeysClient
{
    public const string ApiVersion = "7.5";

    private readonly HttpPipeline _pipeline;
    private readonly Uri _vaultUri;
    private readonly string _vault;
    private readonly TokenService.Diagnostics.TokenServiceMetrics? _metrics;

    /// <summary>The host's metrics the client was built with (<see cref="KeyVaultClientOptions.Metrics"/>): where <see cref="KeyVaultErrors"/> counts its errors.</summary>
    internal TokenService.Diagnostics.TokenServiceMetrics? Metrics => _metrics;

    public KeyVaultKeysClient(Uri vaultUri, TokenCredential credential, KeyVaultClientOptions? options = null)
    {
        options ??= new KeyVaultClientOptions();
        _vaultUri = vaultUri;
        _vault = vaultUri.AbsoluteUri.TrimEnd('/');
        _metrics = options.Metrics;
        _pipeline = HttpPipelineBuilder.Build(options, new KeyVaultChallengeAuthenticationPolicy(credential, !options.DisableChallengeResourceVerification));
    }

    /// <summary>
    /// Creates a key version. <paramref name="notBefore"/> and <paramref name="expiresOn"/> become <c>attributes.nbf</c>
    /// and <c>attributes.exp</c>, NumericDate (whole seconds since the epoch) as the REST reference ("Create Key",
    /// KeyAttributes) defines them; an Azure Policy assignment may deny a key without <c>exp</c>.
    /// </summary>
    public async Task<KeyVaultKey> CreateKeyAsync(
        string name, string keyType, int? keySize, string? curve, IReadOnlyDictionary<string, string> tags, CancellationToken cancellationToken,
        DateTimeOffset? notBefore = null, DateTimeOffset? expiresOn = null)
    {
        var attributes = new JsonObject { ["enabled"] = true };
        if (notBefore is { } nbf)
        {
            attributes["nbf"] = nbf.ToUnixTimeSeconds();
        }

        if (expiresOn is { } exp)
        {
            attributes["exp"] = exp.ToUnixTimeSeconds();
        }

        var body = new JsonObject
        {
            ["kty"] = keyType,
            ["key_ops"] = new JsonArray("sign", "verify"),
            ["attributes"] = attributes,
            ["tags"] = Tags(tags),
        };
        if (keySize is { } size)
        {
            body["key_size"] = size;
        }

        if (curve is not null)
        {
            body["crv"] = curve;
        }

        using var json = await SendAsync("create", RequestMethod.Post, $"/keys/{Uri.EscapeDataString(name)}/create", body, cancellationToken);
        return ReadBundle(json!);
    }

    /// <summary>A key version (or the latest when <paramref name="version"/> is null); null when absent.</summary>
    public async Task<KeyVaultKey?> GetKeyAsync(string name, string? version, CancellationToken cancellationToken)
    {
        using var json = await SendAsync("get", RequestMethod.Get, $"/keys/{Uri.EscapeDataString(name)}/{Uri.EscapeDataString(version ?? string.Empty)}", null, cancellationToken, allowNotFound: true);
        return json is null ? null : ReadBundle(json);
    }

    /// <summary>All versions of a key (following nextLink); public keys are not included in list results.</summary>
    public async Task<IReadOnlyList<KeyVaultKey>> ListKeyVersionsAsync(string name, CancellationToken cancellationToken)
    {
        var result = new List<KeyVaultKey>();
        string? next = $"{_vault}/keys/{Uri.EscapeDataString(name)}/versions?api-version={ApiVersion}&maxresults=25";
        while (next is not null)
        {
            // The link is followed with the token, so it must stay in the vault. Compared as a URI, not as a string:
            // Key Vault's documented list responses spell the default port (https://myvault.vault.azure.net:443/keys/…).
            if (!Uri.TryCreate(next, UriKind.Absolute, out var nextUri) || !IsSameOrigin(nextUri, _vaultUri))
            {
                throw new KeyVaultException(0, null, "Key Vault returned a nextLink outside the vault.");
            }

            using var json = await SendAbsoluteAsync("list", RequestMethod.Get, nextUri.AbsoluteUri, null, cancellationToken, allowNotFound: true);
            if (json is null)
            {
                break;
            }

            next = Read(json, "a key version list", root =>
            {
                foreach (var item in root.GetProperty("value").EnumerateArray())
                {
                    result.Add(ReadItem(item, RequiredString(item, "kid")));
                }

                // The last page's nextLink is absent, null or "" (Azure.Core's pageables stop on all three).
                return root.TryGetProperty("nextLink", out var link) && link.ValueKind != JsonValueKind.Null && link.GetString() is { Length: > 0 } value
                    ? value
                    : null;
            });
        }

        return result;
    }

    public async Task<KeyVaultKey> UpdateKeyAsync(string name, string version, bool? enabled, IReadOnlyDictionary<string, string>? tags, CancellationToken cancellationToken)
    {
        var body = new JsonObject();
        if (enabled is { } e)
        {
            body["attributes"] = new JsonObject { ["enabled"] = e };
        }

        if (tags is not null)
        {
            body["tags"] = Tags(tags);
        }

        using var json = await SendAsync("update", RequestMethod.Patch, $"/keys/{Uri.EscapeDataString(name)}/{Uri.EscapeDataString(version)}", body, cancellationToken);
        return ReadBundle(json!);
    }

    /// <summary>The vault's URL.</summary>
    public Uri VaultUri => _vaultUri;

    /// <summary>Whether <paramref name="kid"/> (a key id URL) names a key of this vault.</summary>
    public bool Owns(string kid) => kid.StartsWith(_vault + "/keys/", StringComparison.OrdinalIgnoreCase);

    /// <summary>Signs a digest with a key version (<paramref name="kid"/> is the full key id URL); returns the raw signature.</summary>
    public async Task<byte[]> SignAsync(string kid, string algorithm, byte[] digest, CancellationToken cancellationToken)
    {
        if (!Owns(kid))
        {
            throw new ArgumentException("The key id does not belong to this vault.", nameof(kid));
        }

        var body = new JsonObject { ["alg"] = algorithm, ["value"] = Base64UrlEncoding.Encode(digest) };
        using var json = await SendAbsoluteAsync("sign", RequestMethod.Post, $"{kid}/sign?api-version={ApiVersion}", body, cancellationToken);
        return Read(json!, "a key operation result", root => Base64UrlEncoding.DecodeStrict(RequiredString(root, "value"))
            ?? throw new FormatException("The signature is not base64url."));
    }

    private Task<JsonDocument?> SendAsync(string operation, RequestMethod method, string path, JsonNode? body, CancellationToken cancellationToken, bool allowNotFound = false) =>
        SendAbsoluteAsync(operation, method, $"{_vault}{path}?api-version={ApiVersion}", body, cancellationToken, allowNotFound);

    private async Task<JsonDocument?> SendAbsoluteAsync(
        string operation, RequestMethod method, string url, JsonNode? body, CancellationToken cancellationToken, bool allowNotFound = false)
    {
        using var message = _pipeline.CreateMessage();
        message.ResponseClassifier = NoRetryOn429.Instance;

        message.Request.Method = method;
        message.Request.Uri.Reset(new Uri(url));
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
                return JsonDocument.Parse(response.Content.ToMemory());
            }
            catch (JsonException ex)
            {
                throw Malformed("JSON", ex);
            }
        }

        if (response.Status == 404 && allowNotFound)
        {
            return null;
        }

        // Any other answer is an error, thrown as Azure.Security.KeyVault.Keys' clients throw it: Status, and ErrorCode
        // the innermost code of Key Vault's error envelope. KeyVaultErrors (in the signing service) translates it.
        throw new RequestFailedException(response, null, InnermostErrorCode.Instance);
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
    /// that Retry-After. 5xx and transport failures are still retried here.
    /// </summary>
    private sealed class NoRetryOn429 : ResponseClassifier
    {
        public static readonly NoRetryOn429 Instance = new();

        public override bool IsRetriableResponse(HttpMessage message) => message.Response.Status != 429 && base.IsRetriableResponse(message);
    }

    private static JsonObject Tags(IReadOnlyDictionary<string, string> tags)
    {
        var o = new JsonObject();
        foreach (var (k, v) in tags)
        {
            o[k] = v;
        }

        return o;
    }

    /// <summary>Same scheme, host (case-insensitive) and effective port: "https://v.vault.azure.net:443" is "https://v.vault.azure.net".</summary>
    private static bool IsSameOrigin(Uri a, Uri b) =>
        string.Equals(a.Scheme, b.Scheme, StringComparison.OrdinalIgnoreCase)
        && string.Equals(a.IdnHost, b.IdnHost, StringComparison.OrdinalIgnoreCase)
        && a.Port == b.Port;

    /// <summary>
    /// A 200 whose body is not what the REST reference documents (a gateway's HTML page, a truncated or changed body)
    /// is treated like an outage: the caller answers 503 and tries again later; no parse error escapes unhandled.
    /// </summary>
    private static RequestFailedException Malformed(string what, Exception inner) =>
        new(200, $"Key Vault answered 200 with a body that is not {what}: {inner.Message}", null, inner);

    private static T Read<T>(JsonDocument json, string what, Func<JsonElement, T> read)
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

    private static string RequiredString(JsonElement element, string name) =>
        element.GetProperty(name) is { ValueKind: JsonValueKind.String } value && value.GetString() is { Length: > 0 } text
            ? text
            : throw new FormatException($"\"{name}\" is not a non-empty string.");

    /// <summary>A base64url member, checked here so that a bad key bundle is a Key Vault fault, not a broken JWKS later.</summary>
    private static byte[] RequiredBase64Url(JsonElement element, string name) =>
        Base64UrlEncoding.DecodeStrict(RequiredString(element, name)) is { Length: > 0 } bytes
            ? bytes
            : throw new FormatException($"\"{name}\" is not base64url.");

    /// <summary>RFC 7518 §6.2.1.2: a coordinate is the full size of the curve's field: 32 octets for P-256, 48 for P-384, 66 for P-521.</summary>
    private static int CoordinateSize(string crv) => crv switch
    {
        "P-256" or "P-256K" => 32,
        "P-384" => 48,
        "P-521" => 66,
        _ => throw new FormatException($"\"crv\" {crv} is not a supported curve."),
    };

    /// <summary>
    /// A coordinate of exactly <paramref name="size"/> octets (RFC 7518 §6.2.1.2, §6.2.1.3). An encoder that drops
    /// leading zero octets (an integer, not a fixed-size string) is left-padded; one that adds a 0x00 sign octet (DER
    /// style) is trimmed; both name the same point, so the RFC 7638 thumbprint (the kid) comes out as it would from the
    /// vault's own fixed-size form. Anything longer is not a coordinate of the curve: refused here, as a Key Vault fault,
    /// rather than when the key is built for the JWKS or validation.
    /// </summary>
    private static byte[] Coordinate(byte[] value, int size, string name)
    {
        if (value.Length == size)
        {
            return value;
        }

        var start = 0;
        while (value.Length - start > size && value[start] == 0)
        {
            start++;
        }

        if (value.Length - start > size)
        {
            throw new FormatException($"\"{name}\" is {value.Length} octets, more than the curve's {size}.");
        }

        var padded = new byte[size];
        value.AsSpan(start).CopyTo(padded.AsSpan(size - (value.Length - start)));
        return padded;
    }

    private static KeyVaultKey ReadBundle(JsonDocument json) => Read(json, "a key bundle", bundle =>
    {
        var key = bundle.GetProperty("key");
        var kid = RequiredString(key, "kid");
        var kty = RequiredString(key, "kty");
        PublicJsonWebKey? jwk = null;
        if (kty.StartsWith("RSA", StringComparison.Ordinal))
        {
            // RFC 7518 §6.3.1.1: n is the unsigned modulus without leading zero octets, yet some libraries and HSMs emit a
            // 0x00 sign octet (257 octets for a 2048-bit key); the Azure SDK's PublicJsonWebKey trims it. Kept, it would change
            // the RFC 7638 thumbprint and make VerificationKey refuse the key.
            var n = RequiredBase64Url(key, "n");
            if (n.Length > 1 && n[0] == 0)
            {
                n = n[1..];
            }

            jwk = new PublicJsonWebKey { Kty = "RSA", N = Base64UrlEncoding.Encode(n), E = Base64UrlEncoding.Encode(RequiredBase64Url(key, "e")) };
        }
        else if (kty.StartsWith("EC", StringComparison.Ordinal))
        {
            var crv = RequiredString(key, "crv");
            var size = CoordinateSize(crv);
            jwk = new PublicJsonWebKey
            {
                Kty = "EC",
                Crv = crv,
                X = Base64UrlEncoding.Encode(Coordinate(RequiredBase64Url(key, "x"), size, "x")),
                Y = Base64UrlEncoding.Encode(Coordinate(RequiredBase64Url(key, "y"), size, "y")),
            };
        }

        return ReadItem(bundle, kid) with { PublicJwk = jwk };
    });

    private static KeyVaultKey ReadItem(JsonElement item, string kid)
    {
        var attributes = item.TryGetProperty("attributes", out var a) ? a : default;
        var enabled = attributes.ValueKind == JsonValueKind.Object && attributes.TryGetProperty("enabled", out var en) && en.GetBoolean();
        var created = attributes.ValueKind == JsonValueKind.Object && attributes.TryGetProperty("created", out var c) ? DateTimeOffset.FromUnixTimeSeconds(c.GetInt64()) : DateTimeOffset.MinValue;
        var tags = new Dictionary<string, string>(StringComparer.Ordinal);
        if (item.TryGetProperty("tags", out var t) && t.ValueKind == JsonValueKind.Object)
        {
            foreach (var p in t.EnumerateObject())
            {
                tags[p.Name] = p.Value.GetString() ?? string.Empty;
            }
        }

        return new KeyVaultKey(kid, kid[(kid.LastIndexOf('/') + 1)..], null, enabled, created, tags)
        {
            ExpiresOn = NumericDate(attributes, "exp"),
            NotBefore = NumericDate(attributes, "nbf"),
        };

        static DateTimeOffset? NumericDate(JsonElement attributes, string name) =>
            attributes.ValueKind == JsonValueKind.Object && attributes.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Number
                ? DateTimeOffset.FromUnixTimeSeconds(value.GetInt64())
                : null;
    }
}
