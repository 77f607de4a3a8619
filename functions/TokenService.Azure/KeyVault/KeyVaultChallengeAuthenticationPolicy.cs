using System.Text.RegularExpressions;
using Azure.Core;
using Azure.Core.Pipeline;

namespace TokenService.Azure.KeyVault;

/// <summary>
/// Key Vault's challenge-based authentication: the first request goes without a token; the 401's
/// <c>WWW-Authenticate: Bearer authorization="https://login.microsoftonline.com/{tenant}", resource="…"</c> (or
/// <c>scope="…"</c>) names the authority and resource; the token for that scope is cached and sent from then on.
/// The resource must belong to the vault's domain (as the Azure SDK checks), so a spoofed challenge cannot
/// obtain a token for another service. Bearer tokens go only over https (or to loopback, for tests).
/// </summary>
internal sealed partial class KeyVaultChallengeAuthenticationPolicy(TokenCredential credential, bool verifyChallengeResource = true) : HttpPipelinePolicy
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private string? _scope;
    private string? _tenantId;
    private AccessToken? _token;

    public override void Process(HttpMessage message, ReadOnlyMemory<HttpPipelinePolicy> pipeline) =>
        ProcessAsync(message, pipeline).AsTask().GetAwaiter().GetResult();

    public override async ValueTask ProcessAsync(HttpMessage message, ReadOnlyMemory<HttpPipelinePolicy> pipeline)
    {
        var uri = message.Request.Uri.ToUri();
        if (uri.Scheme != Uri.UriSchemeHttps && !uri.IsLoopback)
        {
            throw new InvalidOperationException("Key Vault bearer tokens are only sent over https.");
        }

        if (_scope is not null)
        {
            await AuthorizeAsync(message, forceRefresh: false);
        }

        await ProcessNextAsync(message, pipeline);
        if (message.Response.Status != 401 || !message.Response.Headers.TryGetValue("WWW-Authenticate", out var challenge) || !TryParse(challenge, uri, out var scope, out var tenant))
        {
            return;
        }

        (_scope, _tenantId) = (scope, tenant);
        await AuthorizeAsync(message, forceRefresh: true);
        await ProcessNextAsync(message, pipeline);
    }

    private async ValueTask AuthorizeAsync(HttpMessage message, bool forceRefresh)
    {
        await _gate.WaitAsync(message.CancellationToken);
        try
        {
            if (forceRefresh || _token is not { } token || token.ExpiresOn - DateTimeOffset.UtcNow < TimeSpan.FromMinutes(5))
            {
                _token = await credential.GetTokenAsync(new TokenRequestContext([_scope!], tenantId: _tenantId), message.CancellationToken);
            }

            message.Request.Headers.SetValue("Authorization", "Bearer " + _token.Value.Token);
        }
        finally
        {
            _gate.Release();
        }
    }

    internal bool TryParse(string challenge, Uri vault, out string scope, out string? tenantId)
    {
        scope = string.Empty;
        tenantId = null;
        if (!challenge.StartsWith("Bearer", StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        var parameters = ChallengeParameter().Matches(challenge).ToDictionary(m => m.Groups[1].Value.ToLowerInvariant(), m => m.Groups[2].Value);
        var resource = parameters.GetValueOrDefault("resource") ?? parameters.GetValueOrDefault("scope")?.Replace("/.default", string.Empty, StringComparison.Ordinal);
        if (resource is null || !Uri.TryCreate(resource, UriKind.Absolute, out var resourceUri))
        {
            return false;
        }

        // The resource's domain must be the vault's (vault.azure.net for https://x.vault.azure.net).
        if (verifyChallengeResource && !vault.Host.EndsWith("." + resourceUri.Host, StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        scope = resource.TrimEnd('/') + "/.default";
        var authority = parameters.GetValueOrDefault("authorization") ?? parameters.GetValueOrDefault("authorization_uri");
        if (authority is not null && Uri.TryCreate(authority, UriKind.Absolute, out var authorityUri) && authorityUri.Segments.Length > 1)
        {
            tenantId = authorityUri.Segments[^1].Trim('/');
        }

        return true;
    }

    [GeneratedRegex("([A-Za-z_]+)=\"([^\"]*)\"")]
    private static partial Regex ChallengeParameter();
}
