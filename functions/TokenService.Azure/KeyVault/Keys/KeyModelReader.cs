using System.Text.Json;
using System.Text.Json.Nodes;

namespace TokenService.Azure.KeyVault.Keys;

/// <summary>
/// Key Vault's JSON (REST reference, KeyBundle, KeyItem, KeyAttributes) read into <see cref="KeyVaultKey"/> and
/// <see cref="KeyProperties"/>, and <see cref="CreateKeyOptions"/> and <see cref="KeyProperties"/> written for create and
/// update. What the SDK's model serialization does; strict where the service relies on a member.
/// </summary>
internal static class KeyModelReader
{
    public static JsonObject CreateBody(KeyType keyType, int? keySize, KeyCurveName? curve, CreateKeyOptions options)
    {
        var body = new JsonObject
        {
            ["kty"] = keyType.Value,
            ["key_ops"] = new JsonArray([.. options.KeyOperations.Select(o => (JsonNode)o.Value)]),
            ["attributes"] = Attributes(options.Enabled, options.NotBefore, options.ExpiresOn),
            ["tags"] = Tags(options.Tags),
        };
        if (keySize is { } size)
        {
            body["key_size"] = size;
        }

        if (curve is { } crv)
        {
            body["crv"] = crv.Value;
        }

        return body;
    }

    /// <summary>An update: the attributes set on <paramref name="properties"/>, and its tags when they were touched (they replace all).</summary>
    public static JsonObject UpdateBody(KeyProperties properties)
    {
        var body = new JsonObject();
        if (properties.Enabled is not null || properties.NotBefore is not null || properties.ExpiresOn is not null)
        {
            body["attributes"] = Attributes(properties.Enabled, properties.NotBefore, properties.ExpiresOn);
        }

        if (properties.HasTags)
        {
            body["tags"] = Tags(properties.Tags);
        }

        return body;
    }

    private static JsonObject Attributes(bool? enabled, DateTimeOffset? notBefore, DateTimeOffset? expiresOn)
    {
        var attributes = new JsonObject();
        if (enabled is { } e)
        {
            attributes["enabled"] = e;
        }

        if (notBefore is { } nbf)
        {
            attributes["nbf"] = nbf.ToUnixTimeSeconds();
        }

        if (expiresOn is { } exp)
        {
            attributes["exp"] = exp.ToUnixTimeSeconds();
        }

        return attributes;
    }

    private static JsonObject Tags(IDictionary<string, string> tags)
    {
        var o = new JsonObject();
        foreach (var (k, v) in tags)
        {
            o[k] = v;
        }

        return o;
    }

    public static KeyVaultKey ReadKey(JsonDocument json) => KeyVaultPipeline.Read(json, "a key bundle", bundle =>
    {
        var key = bundle.GetProperty("key");
        var kid = RequiredString(key, "kid");
        var kty = new KeyType(RequiredString(key, "kty"));
        JsonWebKey jwk;
        if (kty.Value.StartsWith("RSA", StringComparison.Ordinal))
        {
            jwk = new JsonWebKey { Id = kid, KeyType = kty, N = RequiredBase64Url(key, "n"), E = RequiredBase64Url(key, "e") };
        }
        else if (kty.Value.StartsWith("EC", StringComparison.Ordinal))
        {
            // Checked here so that a bad key bundle is a Key Vault fault, not a broken JWKS later.
            var crv = new KeyCurveName(RequiredString(key, "crv"));
            var size = KeyVaultJwk.CoordinateSize(crv.Value);
            jwk = new JsonWebKey
            {
                Id = kid,
                KeyType = kty,
                CurveName = crv,
                X = KeyVaultJwk.Coordinate(RequiredBase64Url(key, "x"), size, "x"),
                Y = KeyVaultJwk.Coordinate(RequiredBase64Url(key, "y"), size, "y"),
            };
        }
        else
        {
            jwk = new JsonWebKey { Id = kid, KeyType = kty };
        }

        return new KeyVaultKey(jwk, ReadProperties(bundle, kid));
    });

    /// <summary>One page of a version list: its items and its nextLink (null on the last page).</summary>
    public static (List<KeyProperties> Items, string? NextLink) ReadPage(JsonDocument json) => KeyVaultPipeline.Read(json, "a key version list", root =>
    {
        var items = new List<KeyProperties>();
        foreach (var item in root.GetProperty("value").EnumerateArray())
        {
            items.Add(ReadProperties(item, RequiredString(item, "kid")));
        }

        // The last page's nextLink is absent, null or "" (Azure.Core's pageables stop on all three).
        var next = root.TryGetProperty("nextLink", out var link) && link.ValueKind != JsonValueKind.Null && link.GetString() is { Length: > 0 } value
            ? value
            : null;
        return (items, next);
    });

    private static KeyProperties ReadProperties(JsonElement item, string kid)
    {
        var attributes = item.TryGetProperty("attributes", out var a) && a.ValueKind == JsonValueKind.Object ? a : default;
        var properties = new KeyProperties(new Uri(kid))
        {
            // A version without attributes.enabled is read as disabled: the service signs only with enabled ones.
            Enabled = attributes.ValueKind == JsonValueKind.Object && attributes.TryGetProperty("enabled", out var en) && en.GetBoolean(),
            CreatedOn = NumericDate(attributes, "created"),
            ExpiresOn = NumericDate(attributes, "exp"),
            NotBefore = NumericDate(attributes, "nbf"),
        };
        if (item.TryGetProperty("tags", out var t) && t.ValueKind == JsonValueKind.Object)
        {
            foreach (var p in t.EnumerateObject())
            {
                properties.Tags[p.Name] = p.Value.GetString() ?? string.Empty;
            }
        }

        return properties;

        static DateTimeOffset? NumericDate(JsonElement attributes, string name) =>
            attributes.ValueKind == JsonValueKind.Object && attributes.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Number
                ? DateTimeOffset.FromUnixTimeSeconds(value.GetInt64())
                : null;
    }

    public static string RequiredString(JsonElement element, string name) =>
        element.GetProperty(name) is { ValueKind: JsonValueKind.String } value && value.GetString() is { Length: > 0 } text
            ? text
            : throw new FormatException($"\"{name}\" is not a non-empty string.");

    public static byte[] RequiredBase64Url(JsonElement element, string name) =>
        Base64UrlEncoding.DecodeStrict(RequiredString(element, name)) is { Length: > 0 } bytes
            ? bytes
            : throw new FormatException($"\"{name}\" is not base64url.");
}
