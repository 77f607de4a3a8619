using Azure;
using Azure.Core;
using TokenService.Azure.KeyVault.Keys.Cryptography;

namespace TokenService.Azure.KeyVault.Keys;

/// <summary>
/// Stands in for <c>Azure.Security.KeyVault.Keys.KeyClient</c> (not served here): the members the signing service uses,
/// with the SDK's names, parameters and failures, so that moving to the package is a package reference, the using lines
/// of this namespace, and these files deleted. Create, get, list versions and update on Key Vault's REST API
/// (api-version 7.5) through <see cref="KeyVaultPipeline"/>: an error answer, 404 included, is
/// <see cref="RequestFailedException"/>; the signing service translates it (<see cref="KeyVaultErrors"/>).
/// </summary>
public class KeyClient
{
    private readonly KeyVaultPipeline _pipeline;

    public KeyClient(Uri vaultUri, TokenCredential credential, KeyClientOptions? options = null)
    {
        _pipeline = new KeyVaultPipeline(vaultUri, credential, options ?? new KeyClientOptions());
    }

    /// <summary>The vault's URL.</summary>
    public virtual Uri VaultUri => _pipeline.VaultUri;

    /// <summary>Creates a version of the RSA key <see cref="CreateRsaKeyOptions.Name"/>.</summary>
    public virtual Task<Response<KeyVaultKey>> CreateRsaKeyAsync(CreateRsaKeyOptions rsaKeyOptions, CancellationToken cancellationToken = default) =>
        CreateAsync(rsaKeyOptions.Name, KeyModelReader.CreateBody(rsaKeyOptions.KeyType, rsaKeyOptions.KeySize, null, rsaKeyOptions), cancellationToken);

    /// <summary>Creates a version of the EC key <see cref="CreateEcKeyOptions.Name"/>.</summary>
    public virtual Task<Response<KeyVaultKey>> CreateEcKeyAsync(CreateEcKeyOptions ecKeyOptions, CancellationToken cancellationToken = default) =>
        CreateAsync(ecKeyOptions.Name, KeyModelReader.CreateBody(ecKeyOptions.KeyType, null, ecKeyOptions.CurveName, ecKeyOptions), cancellationToken);

    /// <summary>Creates a version of the key <paramref name="name"/> of any <paramref name="keyType"/> Key Vault knows.</summary>
    public virtual Task<Response<KeyVaultKey>> CreateKeyAsync(string name, KeyType keyType, CreateKeyOptions? keyOptions = null, CancellationToken cancellationToken = default) =>
        CreateAsync(name, KeyModelReader.CreateBody(keyType, null, null, keyOptions ?? new CreateKeyOptions()), cancellationToken);

    /// <summary>A key version (the latest when <paramref name="version"/> is null); a missing one is a 404 <see cref="RequestFailedException"/>.</summary>
    public virtual async Task<Response<KeyVaultKey>> GetKeyAsync(string name, string? version = null, CancellationToken cancellationToken = default)
    {
        var (json, response) = await _pipeline.SendAsync(RequestMethod.Get, $"/keys/{Uri.EscapeDataString(name)}/{Uri.EscapeDataString(version ?? string.Empty)}", null, cancellationToken);
        using (json)
        {
            return Response.FromValue(KeyModelReader.ReadKey(json), response);
        }
    }

    /// <summary>
    /// The properties of every version of a key, page by page following <c>nextLink</c>; public keys are not included
    /// (<see cref="GetKeyAsync"/> reads one).
    /// </summary>
    public virtual AsyncPageable<KeyProperties> GetPropertiesOfKeyVersionsAsync(string name, CancellationToken cancellationToken = default) =>
        new VersionPages(_pipeline, name, cancellationToken);

    /// <summary>
    /// Updates the version <paramref name="properties"/> names (<see cref="KeyProperties.Name"/> and
    /// <see cref="KeyProperties.Version"/>): the attributes set on it, and its tags when they were touched, which
    /// replace all of the version's tags.
    /// </summary>
    public virtual async Task<Response<KeyVaultKey>> UpdateKeyPropertiesAsync(KeyProperties properties, CancellationToken cancellationToken = default)
    {
        // The SDK's overload also takes the key operations to set; the service never changes them.
        var path = $"/keys/{Uri.EscapeDataString(properties.Name)}/{Uri.EscapeDataString(properties.Version ?? string.Empty)}";
        var (json, response) = await _pipeline.SendAsync(RequestMethod.Patch, path, KeyModelReader.UpdateBody(properties), cancellationToken);
        using (json)
        {
            return Response.FromValue(KeyModelReader.ReadKey(json), response);
        }
    }

    /// <summary>
    /// A client for the key operations of a key version, on this client's pipeline (its credential and challenge). Unlike
    /// the SDK's, ours never reads the key first to work locally: it only signs, which needs the vault.
    /// </summary>
    public virtual CryptographyClient GetCryptographyClient(string keyName, string? keyVersion = null) =>
        new(new Uri($"{_pipeline.Vault}/keys/{Uri.EscapeDataString(keyName)}/{Uri.EscapeDataString(keyVersion ?? string.Empty)}".TrimEnd('/')), _pipeline);

    private async Task<Response<KeyVaultKey>> CreateAsync(string name, System.Text.Json.Nodes.JsonObject body, CancellationToken cancellationToken)
    {
        var (json, response) = await _pipeline.SendAsync(RequestMethod.Post, $"/keys/{Uri.EscapeDataString(name)}/create", body, cancellationToken);
        using (json)
        {
            return Response.FromValue(KeyModelReader.ReadKey(json), response);
        }
    }

    /// <summary>The version list as Azure.Core's <see cref="AsyncPageable{T}"/>: one page per call, its continuation the nextLink.</summary>
    private sealed class VersionPages(KeyVaultPipeline pipeline, string name, CancellationToken cancellationToken) : AsyncPageable<KeyProperties>(cancellationToken)
    {
        public override async IAsyncEnumerable<Page<KeyProperties>> AsPages(string? continuationToken = null, int? pageSizeHint = null)
        {
            var next = continuationToken ?? $"{pipeline.Vault}/keys/{Uri.EscapeDataString(name)}/versions?api-version={KeyVaultPipeline.ApiVersion}&maxresults={pageSizeHint ?? 25}";
            while (next is not null)
            {
                // The link is followed with the token, so it must stay in the vault. Compared as a URI, not as a string:
                // Key Vault's documented list responses spell the default port (https://myvault.vault.azure.net:443/keys/…).
                if (!Uri.TryCreate(next, UriKind.Absolute, out var nextUri) || !IsSameOrigin(nextUri, pipeline.VaultUri))
                {
                    throw KeyVaultPipeline.Malformed("a key version list", new FormatException("Key Vault returned a nextLink outside the vault."));
                }

                var (json, response) = await pipeline.SendAsync(RequestMethod.Get, nextUri, null, CancellationToken);
                (List<KeyProperties> Items, string? NextLink) page;
                using (json)
                {
                    page = KeyModelReader.ReadPage(json);
                }

                next = page.NextLink;
                yield return Page<KeyProperties>.FromValues(page.Items, next, response);
            }
        }

        /// <summary>Same scheme, host (case-insensitive) and effective port: "https://v.vault.azure.net:443" is "https://v.vault.azure.net".</summary>
        private static bool IsSameOrigin(Uri a, Uri b) =>
            string.Equals(a.Scheme, b.Scheme, StringComparison.OrdinalIgnoreCase)
            && string.Equals(a.IdnHost, b.IdnHost, StringComparison.OrdinalIgnoreCase)
            && a.Port == b.Port;
    }
}
