using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Azure;
using Azure.Core;
using Azure.Core.Pipeline;
using TokenService.Jwt;

namespace TokenService.Azure.KeyVault;

/// <summary>A key version as Key Vault returns it: full key id, public JWK, attributes and tags.</summary>
public sealed record KeyVaultKey(string Kid, string Version, JsonWebKey? PublicJwk, bool Enabled, DateTimeOffset Created, IReadOnlyDictionary<string, string> Tags);

/// <summary>A Key Vault error that is not an outage: bad request, forbidden, conflict.</summary>
public sealed class KeyVaultException(int status, string? code, string message) : Exception(message)
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
    public string? Code { get; } = code;
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
}

/// <summary>
/// A small typed Key Vault keys client on Azure.Core's <see cref="HttpPipeline"/> (REST api-version 7.5): create,
/// get, list versions, update and sign. 429 (with Retry-After; for sign calls not retried here, see
/// <see cref="SignClassifier"/>), 5xx and transport failures are retried by the pipeline and then become
/// <see cref="DependencyUnavailableException"/>: signing fails closed, never falls back.
/// So does a 200 whose body is not the documented JSON (the HTTP layer answers 503 and the caller retries).
/// </summary>
public sealed class KeyVaultKeysClient
{
    public const string ApiVersion = "7.5";

    private readonly HttpPipeline _pipeline;
    private readonly Uri _vaultUri;
    private readonly string _vault;

    public KeyVaultKeysClient(Uri vaultUri, TokenCredential credential, KeyVaultClientOptions? options = null)
    {
        options ??= new KeyVaultClientOptions();
        _vaultUri = vaultUri;
        _vault = vaultUri.AbsoluteUri.TrimEnd('/');
        _pipeline = HttpPipelineBuilder.Build(options, new KeyVaultChallengeAuthenticationPolicy(credential, !options.DisableChallengeResourceVerification));
    }

    public async Task<KeyVaultKey> CreateKeyAsync(string name, string keyType, int? keySize, string? curve, IReadOnlyDictionary<string, string> tags, CancellationToken cancellationToken)
    {
        var body = new JsonObject
        {
            ["kty"] = keyType,
            ["key_ops"] = new JsonArray("sign", "verify"),
            ["attributes"] = new JsonObject { ["enabled"] = true },
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

        using var json = await SendAsync(RequestMethod.Post, $"/keys/{Uri.EscapeDataString(name)}/create", body, cancellationToken);
        return ReadBundle(json!);
    }

    /// <summary>A key version (or the latest when <paramref name="version"/> is null); null when absent.</summary>
    public async Task<KeyVaultKey?> GetKeyAsync(string name, string? version, CancellationToken cancellationToken)
    {
        using var json = await SendAsync(RequestMethod.Get, $"/keys/{Uri.EscapeDataString(name)}/{Uri.EscapeDataString(version ?? string.Empty)}", null, cancellationToken, allowNotFound: true);
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

            using var json = await SendAbsoluteAsync(RequestMethod.Get, nextUri.AbsoluteUri, null, cancellationToken, allowNotFound: true);
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

        using var json = await SendAsync(RequestMethod.Patch, $"/keys/{Uri.EscapeDataString(name)}/{Uri.EscapeDataString(version)}", body, cancellationToken);
        return ReadBundle(json!);
    }

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
        using var json = await SendAbsoluteAsync(RequestMethod.Post, $"{kid}/sign?api-version={ApiVersion}", body, cancellationToken, classifier: SignClassifier.Instance);
        return Read(json!, "a key operation result", root => Base64UrlEncoding.DecodeStrict(RequiredString(root, "value"))
            ?? throw new FormatException("The signature is not base64url."));
    }

    private Task<JsonDocument?> SendAsync(RequestMethod method, string path, JsonNode? body, CancellationToken cancellationToken, bool allowNotFound = false) =>
        SendAbsoluteAsync(method, $"{_vault}{path}?api-version={ApiVersion}", body, cancellationToken, allowNotFound);

    private async Task<JsonDocument?> SendAbsoluteAsync(
        RequestMethod method, string url, JsonNode? body, CancellationToken cancellationToken, bool allowNotFound = false, ResponseClassifier? classifier = null)
    {
        using var message = _pipeline.CreateMessage();
        if (classifier is not null)
        {
            message.ResponseClassifier = classifier;
        }

        message.Request.Method = method;
        message.Request.Uri.Reset(new Uri(url));
        message.Request.Headers.SetValue("Accept", "application/json");
        if (body is not null)
        {
            message.Request.Content = RequestContent.Create(JsonSerializer.SerializeToUtf8Bytes(body));
            message.Request.Headers.SetValue("Content-Type", "application/json");
        }

        try
        {
            await _pipeline.SendAsync(message, cancellationToken);
        }
        catch (Exception ex) when (ex is RequestFailedException or AggregateException || (ex is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            throw new DependencyUnavailableException("keyvault", "Key Vault unreachable: " + ex.GetType().Name, null, ex);
        }

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

        string? code = null, text = null;
        try
        {
            using var error = JsonDocument.Parse(response.Content.ToMemory());
            code = error.RootElement.GetProperty("error").GetProperty("code").GetString();
            text = error.RootElement.GetProperty("error").GetProperty("message").GetString();
        }
        catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException)
        {
        }

        if (response.Status is 401 or 403 or 408 or 429 or >= 500)
        {
            TimeSpan? retryAfter = response.Headers.TryGetValue("Retry-After", out var value) && int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds)
                ? TimeSpan.FromSeconds(seconds)
                : null;
            // The status travels in the inner exception: a 429 opens the vault's shared backoff window (VaultSignThrottle).
            throw new DependencyUnavailableException("keyvault", $"Key Vault answered {response.Status} {code}.", retryAfter, new KeyVaultException(response.Status, code, text ?? string.Empty));
        }

        throw new KeyVaultException(response.Status, code, $"Key Vault answered {response.Status} {code}: {text}");
    }

    /// <summary>
    /// Sign calls are not retried by the pipeline on 429: each request retrying on its own schedule is the retry storm
    /// Key Vault's guidance warns about. The caller's throttle opens one backoff window shared by every request to the
    /// vault (or moves to another vault). 5xx and transport failures are still retried here.
    /// </summary>
    private sealed class SignClassifier : ResponseClassifier
    {
        public static readonly SignClassifier Instance = new();

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
    private static DependencyUnavailableException Malformed(string what, Exception inner) =>
        new("keyvault", $"Key Vault answered 200 with a body that is not {what}: {inner.Message}", null, inner);

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

    private static KeyVaultKey ReadBundle(JsonDocument json) => Read(json, "a key bundle", bundle =>
    {
        var key = bundle.GetProperty("key");
        var kid = RequiredString(key, "kid");
        var kty = RequiredString(key, "kty");
        JsonWebKey? jwk = null;
        if (kty.StartsWith("RSA", StringComparison.Ordinal))
        {
            // RFC 7518 §6.3.1.1: n is the unsigned modulus without leading zero octets, yet some libraries and HSMs emit a
            // 0x00 sign octet (257 octets for a 2048-bit key); the Azure SDK's JsonWebKey trims it. Kept, it would change
            // the RFC 7638 thumbprint and make VerificationKey refuse the key.
            var n = RequiredBase64Url(key, "n");
            if (n.Length > 1 && n[0] == 0)
            {
                n = n[1..];
            }

            jwk = new JsonWebKey { Kty = "RSA", N = Base64UrlEncoding.Encode(n), E = Base64UrlEncoding.Encode(RequiredBase64Url(key, "e")) };
        }
        else if (kty.StartsWith("EC", StringComparison.Ordinal))
        {
            jwk = new JsonWebKey
            {
                Kty = "EC",
                Crv = RequiredString(key, "crv"),
                X = Base64UrlEncoding.Encode(RequiredBase64Url(key, "x")),
                Y = Base64UrlEncoding.Encode(RequiredBase64Url(key, "y")),
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

        return new KeyVaultKey(kid, kid[(kid.LastIndexOf('/') + 1)..], null, enabled, created, tags);
    }
}
