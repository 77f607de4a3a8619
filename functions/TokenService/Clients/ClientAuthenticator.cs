using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Primitives;
using TokenService.Protocol;

namespace TokenService.Clients;

/// <summary>Outcome of client authentication at an OAuth endpoint.</summary>
public readonly record struct ClientAuthenticationResult(RegisteredClient? Client, string? Error, string? Description, bool UsedBasic, TimeSpan? RetryAfter = null)
{
    public bool Succeeded => Client is not null;

    /// <summary>Refused unread: the client id is in a back-off window at this address (answer 429 with Retry-After).</summary>
    public bool BackedOff => RetryAfter is not null;
}

/// <summary>
/// RFC 6749 §2.3.1 client authentication: HTTP Basic (client_secret_basic, with form-urlencoded id and
/// secret) or client_secret_post; public spa clients send only client_id. One method per request.
/// Secrets are compared as SHA-256 hashes in constant time. Failures of a registered client with a secret feed the
/// <see cref="ClientAuthenticationBackoff"/>: inside its window the secret is not compared at all.
/// </summary>
public sealed class ClientAuthenticator(IClientStore clients, ClientAuthenticationBackoff backoff)
{
    public ClientAuthenticationResult Authenticate(HttpRequest request, IReadOnlyDictionary<string, StringValues> form)
    {
        string? basicId = null, basicSecret = null;
        var usedBasic = false;
        var authorization = request.Headers.Authorization;
        if (authorization.Count > 1)
        {
            return Fail(OAuthErrors.InvalidRequest, "Only one Authorization header is allowed.", false);
        }

        if (authorization.Count == 1 && AuthenticationHeaderValue.TryParse(authorization[0], out var header)
            && string.Equals(header.Scheme, "Basic", StringComparison.OrdinalIgnoreCase))
        {
            usedBasic = true;
            if (!TryDecodeBasic(header.Parameter, out basicId, out basicSecret))
            {
                return Fail(OAuthErrors.InvalidClient, "The Basic credentials are malformed.", true);
            }
        }

        var postId = Single(form, "client_id");
        var postSecret = Single(form, "client_secret");
        if (usedBasic && postSecret is not null)
        {
            return Fail(OAuthErrors.InvalidRequest, "Use one client authentication method, not two.", true);
        }

        if (usedBasic && postId is not null && postId != basicId)
        {
            return Fail(OAuthErrors.InvalidRequest, "client_id does not match the authenticated client.", true);
        }

        var clientId = basicId ?? postId;
        var secret = basicSecret ?? postSecret;
        if (string.IsNullOrEmpty(clientId))
        {
            return Fail(OAuthErrors.InvalidClient, "Client authentication is required.", usedBasic);
        }

        var client = clients.Find(clientId);
        if (client is null)
        {
            return Fail(OAuthErrors.InvalidClient, "Client authentication failed.", usedBasic);
        }

        if (client.IsPublic)
        {
            // A public client has no secret to prove; sending one is a configuration mistake worth refusing.
            return secret is null ? new(client, null, null, usedBasic) : Fail(OAuthErrors.InvalidClient, "Client authentication failed.", usedBasic);
        }

        // Anti-automation: inside a back-off window the guess is refused without being compared (429, not 401).
        var address = request.HttpContext.Connection.RemoteIpAddress;
        if (backoff.RetryAfter(client, address) is { } wait)
        {
            return new(null, OAuthErrors.TemporarilyUnavailable, "Too many failed client authentications; retry later.", usedBasic, wait);
        }

        if (client.SecretHash is null || secret is null || !SecretMatches(secret, client.SecretHash))
        {
            backoff.Failed(client, address);
            return Fail(OAuthErrors.InvalidClient, "Client authentication failed.", usedBasic);
        }

        backoff.Succeeded(client, address);
        return new(client, null, null, usedBasic);
    }

    /// <summary>SHA-256 of the secret's UTF-8 against the registered hash, in constant time; the secret's bytes and hash on the stack.</summary>
    private static bool SecretMatches(string secret, byte[] secretHash)
    {
        var length = Encoding.UTF8.GetMaxByteCount(secret.Length);
        var utf8 = length <= 1024 ? stackalloc byte[length] : new byte[length];
        var written = Encoding.UTF8.GetBytes(secret, utf8);
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(utf8[..written], hash);
        CryptographicOperations.ZeroMemory(utf8[..written]);
        return CryptographicOperations.FixedTimeEquals(hash, secretHash);
    }

    private static ClientAuthenticationResult Fail(string error, string description, bool usedBasic) => new(null, error, description, usedBasic);

    private static string? Single(IReadOnlyDictionary<string, StringValues> form, string name) =>
        form.TryGetValue(name, out var values) && values.Count == 1 ? values[0] : null;

    /// <summary>Throws on invalid UTF-8 (a malformed credential is refused, not repaired); one instance, as encodings are thread-safe.</summary>
    private static readonly UTF8Encoding StrictUtf8 = new(false, true);

    // RFC 6749 §2.3.1: id and secret are application/x-www-form-urlencoded before Basic encoding.
    private static bool TryDecodeBasic(string? parameter, out string? clientId, out string? secret)
    {
        clientId = secret = null;
        if (string.IsNullOrEmpty(parameter) || parameter.Length > 4096)
        {
            return false;
        }

        byte[] raw;
        try
        {
            raw = Convert.FromBase64String(parameter);
        }
        catch (FormatException)
        {
            return false;
        }

        string text;
        try
        {
            text = StrictUtf8.GetString(raw);
        }
        catch (DecoderFallbackException)
        {
            return false;
        }

        var colon = text.IndexOf(':', StringComparison.Ordinal);
        if (colon <= 0)
        {
            return false;
        }

        clientId = Uri.UnescapeDataString(text[..colon].Replace('+', ' '));
        secret = Uri.UnescapeDataString(text[(colon + 1)..].Replace('+', ' '));
        return true;
    }
}
