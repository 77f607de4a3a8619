using System.Text.Json;
using System.Text.Json.Nodes;
using Azure;
using Azure.Core;

namespace TokenService.Azure.KeyVault.Keys.Cryptography;

/// <summary>
/// Stands in for <c>Azure.Security.KeyVault.Keys.Cryptography.CryptographyClient</c>: the one key operation the service
/// uses, sign, on a key version in the vault. Made by <see cref="KeyClient.GetCryptographyClient"/>, on that client's
/// pipeline; fails as <see cref="KeyClient"/> does (<see cref="RequestFailedException"/>).
/// </summary>
public class CryptographyClient
{
    private readonly KeyVaultPipeline _pipeline;

    internal CryptographyClient(Uri keyId, KeyVaultPipeline pipeline)
    {
        KeyId = keyId.AbsoluteUri;
        _pipeline = pipeline;
    }

    /// <summary>The key id URL operations go to.</summary>
    public virtual string KeyId { get; }

    /// <summary>Signs a digest already hashed with <paramref name="algorithm"/>'s hash (Key Vault "Sign", REST reference).</summary>
    public virtual async Task<SignResult> SignAsync(SignatureAlgorithm algorithm, byte[] digest, CancellationToken cancellationToken = default)
    {
        var body = new JsonObject { ["alg"] = algorithm.Value, ["value"] = Base64UrlEncoding.Encode(digest) };
        var (json, _) = await _pipeline.SendAsync(RequestMethod.Post, new Uri($"{KeyId}/sign?api-version={KeyVaultPipeline.ApiVersion}"), body, cancellationToken);
        using (json)
        {
            return KeyVaultPipeline.Read(json, "a key operation result", root => new SignResult(
                root.TryGetProperty("kid", out var kid) && kid.ValueKind == JsonValueKind.String && kid.GetString() is { Length: > 0 } id ? id : KeyId,
                Base64UrlEncoding.DecodeStrict(KeyModelReader.RequiredString(root, "value")) ?? throw new FormatException("The signature is not base64url."),
                algorithm));
        }
    }
}
