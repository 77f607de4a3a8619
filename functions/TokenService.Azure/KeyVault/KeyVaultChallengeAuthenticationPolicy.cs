using System.Text.RegularExpressions;
using Azure.Core;
using Azure.Core.Pipeline;

namespace TokenService.Azure.KeyVault;

/// <summary>
/// Key Vault's challenge-based authentication, on Azure.Core's <see cref="BearerTokenAuthenticationPolicy"/> as the Azure
/// SDK's own Key Vault policy is: the first request goes without a token (and without its body); the 401's
/// <c>WWW-Authenticate: Bearer authorization="https://login.microsoftonline.com/{tenant}", resource="…"</c> (or
/// <c>scope="…"</c>) names the authority and resource; the token for that scope is sent from then on. The resource must
/// belong to the vault's domain (as the Azure SDK checks), so a spoofed challenge cannot obtain a token for another service.
/// <para>
/// What the base class decides, and why it is accepted: bearer tokens go over https only, with no exception for loopback
/// (tests serve their in-test vault over a test transport under an https vault name, never over a weaker policy); the
/// token is cached by Azure.Core's own cache, which reads the wall clock (<c>DateTimeOffset.UtcNow</c>, refreshing 5
/// minutes before expiry), not the app's <see cref="TimeProvider"/>: no token cache of ours is left to put on it. A 401
/// to an authorized request is answered once more with the cached token, as the Azure SDK does; a second 401 is the
/// caller's (503).
/// </para>
/// </summary>
internal sealed partial class KeyVaultChallengeAuthenticationPolicy(TokenCredential credential, bool verifyChallengeResource = true)
    : BearerTokenAuthenticationPolicy(credential, [])
{
    /// <summary>Where a request's body waits while the unauthenticated first request goes without it.</summary>
    private const string HeldContent = "TokenService.KeyVault.HeldContent";

    private volatile Challenge? _challenge;

    /// <summary>The token scope and tenant a vault's challenge named.</summary>
    internal sealed record Challenge(string Scope, string? TenantId);

    public override void Process(HttpMessage message, ReadOnlyMemory<HttpPipelinePolicy> pipeline) =>
        ProcessAsync(message, pipeline).AsTask().GetAwaiter().GetResult();

    public override async ValueTask ProcessAsync(HttpMessage message, ReadOnlyMemory<HttpPipelinePolicy> pipeline)
    {
        var content = message.Request.Content;
        try
        {
            await base.ProcessAsync(message, pipeline);
        }
        finally
        {
            // A first request that drew no challenge (a 503, a transport failure) leaves without its body: the retry
            // policy's next attempt must carry it.
            message.Request.Content = content;
        }
    }

    protected override void AuthorizeRequest(HttpMessage message) =>
        AuthorizeRequestAsync(message).AsTask().GetAwaiter().GetResult();

    protected override async ValueTask AuthorizeRequestAsync(HttpMessage message)
    {
        if (_challenge is { } known)
        {
            await AuthenticateAndAuthorizeRequestAsync(message, Context(known));
            return;
        }

        // Until the vault has named its tenant and resource, the request is sure to be answered 401: send it without
        // its body (a digest to sign, key attributes) and send the body only with the token.
        if (message.Request.Content is { } content)
        {
            message.SetProperty(HeldContent, content);
            message.Request.Content = null;
        }
    }

    protected override bool AuthorizeRequestOnChallenge(HttpMessage message) =>
        AuthorizeRequestOnChallengeAsync(message).AsTask().GetAwaiter().GetResult();

    protected override async ValueTask<bool> AuthorizeRequestOnChallengeAsync(HttpMessage message)
    {
        if (!message.Response.Headers.TryGetValue("WWW-Authenticate", out var header) || ParseChallenge(header, message.Request.Uri.ToUri()) is not { } challenge)
        {
            return false;
        }

        if (message.TryGetProperty(HeldContent, out var held))
        {
            message.Request.Content = held as RequestContent;
        }

        _challenge = challenge;
        await AuthenticateAndAuthorizeRequestAsync(message, Context(challenge));
        return true;
    }

    private static TokenRequestContext Context(Challenge challenge) => new([challenge.Scope], tenantId: challenge.TenantId);

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
