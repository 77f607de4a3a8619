using System.Text.RegularExpressions;
using Azure.Core;
using Azure.Core.Pipeline;

namespace TokenService.Azure.KeyVault;

/// <summary>
/// Key Vault's challenge-based authentication: the first request goes without a token (and without its body); the 401's
/// <c>WWW-Authenticate: Bearer authorization="https://login.microsoftonline.com/{tenant}", resource="…"</c> (or
/// <c>scope="…"</c>) names the authority and resource; the token for that scope is cached and sent from then on.
/// The resource must belong to the vault's domain (as the Azure SDK checks), so a spoofed challenge cannot
/// obtain a token for another service. Bearer tokens go only over https (or to loopback, for tests).
/// </summary>
internal sealed partial class KeyVaultChallengeAuthenticationPolicy(TokenCredential credential, bool verifyChallengeResource = true) : HttpPipelinePolicy
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private volatile Challenge? _challenge;
    private AccessToken? _token;

    /// <summary>The token scope and tenant a vault's challenge named.</summary>
    internal sealed record Challenge(string Scope, string? TenantId);

    public override void Process(HttpMessage message, ReadOnlyMemory<HttpPipelinePolicy> pipeline) =>
        ProcessAsync(message, pipeline).AsTask().GetAwaiter().GetResult();

    public override async ValueTask ProcessAsync(HttpMessage message, ReadOnlyMemory<HttpPipelinePolicy> pipeline)
    {
        var uri = message.Request.Uri.ToUri();
        if (uri.Scheme != Uri.UriSchemeHttps && !uri.IsLoopback)
        {
            throw new InvalidOperationException("Key Vault bearer tokens are only sent over https.");
        }

        var content = message.Request.Content;
        try
        {
            if (_challenge is { } known)
            {
                await AuthorizeAsync(message, known, forceRefresh: false);
            }
            else
            {
                // Until the vault has named its tenant and resource, the request is sure to be answered 401: like the
                // Azure SDK's ChallengeBasedAuthenticationPolicy, send it without its body (a digest to sign, key
                // attributes) and send the body only with the token.
                message.Request.Content = null;
            }

            await ProcessNextAsync(message, pipeline);
        }
        finally
        {
            // Restored for the authorized send below and for the retry policy's next attempt.
            message.Request.Content = content;
        }

        if (message.Response.Status != 401 || !message.Response.Headers.TryGetValue("WWW-Authenticate", out var header) || ParseChallenge(header, uri) is not { } challenge)
        {
            return;
        }

        _challenge = challenge;
        await AuthorizeAsync(message, challenge, forceRefresh: true);
        await ProcessNextAsync(message, pipeline);
    }

    private async ValueTask AuthorizeAsync(HttpMessage message, Challenge challenge, bool forceRefresh)
    {
        await _gate.WaitAsync(message.CancellationToken);
        try
        {
            if (forceRefresh || _token is not { } token || token.ExpiresOn - DateTimeOffset.UtcNow < TimeSpan.FromMinutes(5))
            {
                _token = await credential.GetTokenAsync(new TokenRequestContext([challenge.Scope], tenantId: challenge.TenantId), message.CancellationToken);
            }

            message.Request.Headers.SetValue("Authorization", "Bearer " + _token.Value.Token);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// The scope and tenant of a Bearer challenge; null when the header is not a Bearer challenge naming a resource
    /// or scope. A resource outside the vault's domain throws <see cref="KeyVaultException"/>: asking the credential
    /// for a token to another service is refused, and the misconfiguration is reported, not retried as an outage.
    /// </summary>
    internal Challenge? ParseChallenge(string header, Uri vault)
    {
        if (!header.StartsWith("Bearer", StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }

        var parameters = ChallengeParameter().Matches(header)
            .GroupBy(m => m.Groups[1].Value.ToLowerInvariant())
            .ToDictionary(g => g.Key, g => g.First().Groups[2].Value);

        // "resource" is the audience (scope = resource + "/.default"); newer vaults may send "scope" itself.
        var scope = parameters.GetValueOrDefault("resource") is { Length: > 0 } resource
            ? resource.TrimEnd('/') + "/.default"
            : parameters.GetValueOrDefault("scope") is { Length: > 0 } named ? named : null;
        if (scope is null)
        {
            return null;
        }

        if (verifyChallengeResource)
        {
            // The Azure SDK's rule: the vault's host must be a subdomain of the resource's host
            // (contoso.vault.azure.net for https://vault.azure.net).
            if (!Uri.TryCreate(scope, UriKind.Absolute, out var scopeUri))
            {
                throw new KeyVaultException(401, null, $"Key Vault's authentication challenge names an invalid scope '{scope}'.");
            }

            if (!vault.Host.EndsWith("." + scopeUri.Host, StringComparison.OrdinalIgnoreCase))
            {
                throw new KeyVaultException(401, null,
                    $"Key Vault's authentication challenge names the resource '{scopeUri.Host}', which is not the domain of the vault '{vault.Host}'; "
                    + "no token is requested for it. If the vault is reached through another name (a proxy or private endpoint alias), set "
                    + "Keys:DisableChallengeResourceVerification to true. See https://aka.ms/azsdk/blog/vault-uri.");
            }
        }

        string? tenantId = null;
        var authority = parameters.GetValueOrDefault("authorization") ?? parameters.GetValueOrDefault("authorization_uri");
        if (authority is not null && Uri.TryCreate(authority, UriKind.Absolute, out var authorityUri) && authorityUri.Segments.Length > 1)
        {
            tenantId = authorityUri.Segments[^1].Trim('/');
        }

        return new Challenge(scope, tenantId);
    }

    [GeneratedRegex("([A-Za-z_]+)=\"([^\"]*)\"")]
    private static partial Regex ChallengeParameter();
}
