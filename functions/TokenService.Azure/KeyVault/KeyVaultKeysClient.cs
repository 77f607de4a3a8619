using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Azure;
using Azure.Core;
using Azure.Core.Pipeline;
using TokenService.Validation.Jose;

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
/// get, list versions, update and sign. 429 (with Retry-After), 5xx and transport failures are retried by the
/// pipeline and then become <see cref="DependencyUnavailableException"/>: signing fails closed, never falls back.
/// </summary>
public sealed class KeyVaultKeysClient
{
    public const string ApiVersion = "7.5";

    private readonly HttpPipeline _pipeline;
    private readonly string _vault;

    public KeyVaultKeysClient(Uri vaultUri, TokenCredential credential, KeyVaultClientOptions? options = null)
    {
        options ??= new KeyVaultClientOptions();
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
        return ReadBundle(json!.RootElement);
    }

    /// <summary>A key version (or the latest when <paramref name="version"/> is null); null when absent.</summary>
    public async Task<KeyVaultKey?> GetKeyAsync(string name, string? version, CancellationToken cancellationToken)
    {
        using var json = await SendAsync(RequestMethod.Get, $"/keys/{Uri.EscapeDataString(name)}/{Uri.EscapeDataString(version ?? string.Empty)}", null, cancellationToken, allowNotFound: true);
        return json is null ? null : ReadBundle(json.RootElement);
    }

    /// <summary>All versions of a key (following nextLink); public keys are not included in list results.</summary>
    public async Task<IReadOnlyList<KeyVaultKey>> ListKeyVersionsAsync(string name, CancellationToken cancellationToken)
    {
        var result = new List<KeyVaultKey>();
        string? next = $"{_vault}/keys/{Uri.EscapeDataString(name)}/versions?api-version={ApiVersion}&maxresults=25";
        while (next is not null)
        {
            if (!next.StartsWith(_vault + "/", StringComparison.OrdinalIgnoreCase))
            {
                throw new KeyVaultException(0, null, "Key Vault returned a nextLink outside the vault.");
            }

            using var json = await SendAbsoluteAsync(RequestMethod.Get, next, null, cancellationToken, allowNotFound: true);
            if (json is null)
            {
                break;
            }

            foreach (var item in json.RootElement.GetProperty("value").EnumerateArray())
            {
                result.Add(ReadItem(item, item.GetProperty("kid").GetString()!));
            }

            next = json.RootElement.TryGetProperty("nextLink", out var link) && link.ValueKind == JsonValueKind.String ? link.GetString() : null;
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
        return ReadBundle(json!.RootElement);
    }

    /// <summary>Signs a digest with a key version (<paramref name="kid"/> is the full key id URL); returns the raw signature.</summary>
    public async Task<byte[]> SignAsync(string kid, string algorithm, byte[] digest, CancellationToken cancellationToken)
    {
        if (!kid.StartsWith(_vault + "/keys/", StringComparison.OrdinalIgnoreCase))
        {
            throw new ArgumentException("The key id does not belong to this vault.", nameof(kid));
        }

        var body = new JsonObject { ["alg"] = algorithm, ["value"] = Base64UrlEncoding.Encode(digest) };
        using var json = await SendAbsoluteAsync(RequestMethod.Post, $"{kid}/sign?api-version={ApiVersion}", body, cancellationToken);
        return Base64UrlEncoding.DecodeStrict(json!.RootElement.GetProperty("value").GetString())
            ?? throw new KeyVaultException(200, null, "Key Vault returned a signature that is not base64url.");
    }

    private Task<JsonDocument?> SendAsync(RequestMethod method, string path, JsonNode? body, CancellationToken cancellationToken, bool allowNotFound = false) =>
        SendAbsoluteAsync(method, $"{_vault}{path}?api-version={ApiVersion}", body, cancellationToken, allowNotFound);

    private async Task<JsonDocument?> SendAbsoluteAsync(RequestMethod method, string url, JsonNode? body, CancellationToken cancellationToken, bool allowNotFound = false)
    {
        using var message = _pipeline.CreateMessage();
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
            return JsonDocument.Parse(response.Content.ToMemory());
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
            throw new DependencyUnavailableException("keyvault", $"Key Vault answered {response.Status} {code}.", retryAfter);
        }

        throw new KeyVaultException(response.Status, code, $"Key Vault answered {response.Status} {code}: {text}");
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

    private static KeyVaultKey ReadBundle(JsonElement bundle)
    {
        var key = bundle.GetProperty("key");
        var kid = key.GetProperty("kid").GetString()!;
        var kty = key.GetProperty("kty").GetString()!;
        JsonWebKey? jwk = kty.StartsWith("RSA", StringComparison.Ordinal)
            ? new JsonWebKey { Kty = "RSA", N = key.GetProperty("n").GetString(), E = key.GetProperty("e").GetString() }
            : kty.StartsWith("EC", StringComparison.Ordinal)
                ? new JsonWebKey { Kty = "EC", Crv = key.GetProperty("crv").GetString(), X = key.GetProperty("x").GetString(), Y = key.GetProperty("y").GetString() }
                : null;
        return ReadItem(bundle, kid) with { PublicJwk = jwk };
    }

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
