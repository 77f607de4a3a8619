using System.Net;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using TokenService.Clients;

namespace TokenService.Configuration;

/// <summary>Start-up validation of <c>Clients</c>.</summary>
public sealed class ClientRegistryOptionsValidator(IHostEnvironment environment) : IValidateOptions<ClientRegistryOptions>
{
    public ValidateOptionsResult Validate(string? name, ClientRegistryOptions o)
    {
        var errors = new List<string>();
        if (o.Clients.Count == 0 && !environment.IsDevelopment())
        {
            // Only Development registers its walkthrough clients by default; a deployed service with none refuses
            // every token request, which is a configuration mistake to report now rather than at the first request.
            errors.Add($"Clients needs at least one client outside Development (environment '{environment.EnvironmentName}'): set Clients__0__ClientId, Clients__0__Type (spa, confidential, resource_server, admin) and its other keys.");
        }

        var ids = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < o.Clients.Count; i++)
        {
            var c = o.Clients[i];
            var key = $"Clients:{i}";
            if (string.IsNullOrWhiteSpace(c.ClientId) || c.ClientId.Length > 128 || c.ClientId.Any(ch => char.IsControl(ch) || ch == ':'))
            {
                errors.Add($"{key}:ClientId is required (at most 128 characters, no ':' or control characters).");
                continue;
            }

            if (!ids.Add(c.ClientId))
            {
                errors.Add($"{key}:ClientId '{c.ClientId}' is registered twice.");
            }

            if (c.DisplayName is { } displayName && (displayName.Trim().Length > 100 || displayName.Any(char.IsControl)))
            {
                errors.Add($"{key}:DisplayName, when set, must be at most 100 characters without control characters (the name users see on the sessions page).");
            }

            var type = RegisteredClient.ParseType(c.Type);
            if (type is null)
            {
                errors.Add($"{key}:Type must be one of spa, confidential, resource_server, admin.");
                continue;
            }

            if (type == ClientType.Spa)
            {
                if (!string.IsNullOrEmpty(c.Secret))
                {
                    errors.Add($"{key}: a spa client is public and must not have a Secret.");
                }

                if (c.AllowedOrigins.Count == 0)
                {
                    errors.Add($"{key}:AllowedOrigins needs at least one origin for a spa client (e.g. https://app.example.edu).");
                }
            }
            else if (string.IsNullOrEmpty(c.Secret) || c.Secret.Length < 8)
            {
                errors.Add($"{key}:Secret is required for a {c.Type} client (at least 8 characters; use a long random value).");
            }

            if (type == ClientType.ResourceServer && c.AllowedAudiences.Count == 0)
            {
                // Introspection answers a resource server only for tokens of its own audiences (RFC 7662 §4: do not
                // disclose tokens to parties they were not issued for); without any it could read every token.
                errors.Add($"{key}:AllowedAudiences needs at least one audience for a resource_server client (the API's audience, e.g. api://orders): without one it could introspect every token.");
            }

            foreach (var origin in c.AllowedOrigins)
            {
                if (!Uri.TryCreate(origin, UriKind.Absolute, out var uri) || uri.Scheme is not ("https" or "http") || uri.AbsolutePath != "/" || !string.IsNullOrEmpty(uri.Query))
                {
                    errors.Add($"{key}:AllowedOrigins value '{origin}' must be an origin: scheme://host[:port] with no path.");
                }
                else if (uri.Scheme == "http" && !environment.IsDevelopment() && !IsPotentiallyTrustworthyHost(uri))
                {
                    // An http origin's scripts can be altered by anyone on the network path, and the spa's tokens and
                    // credentialed CORS answers would go to them (ASVS V9.1.1: TLS for all client connectivity).
                    errors.Add($"{key}:AllowedOrigins value '{origin}' must be https outside Development (http only for localhost and loopback addresses such as 127.0.0.1).");
                }
            }

            if (c.AllowedScopes.Any(s => string.IsNullOrWhiteSpace(s) || s.Contains(' ', StringComparison.Ordinal)))
            {
                errors.Add($"{key}:AllowedScopes values must be single scope tokens without spaces.");
            }

            if (c.AllowedAudiences.Any(string.IsNullOrWhiteSpace))
            {
                errors.Add($"{key}:AllowedAudiences values must not be empty.");
            }

            if (c.IdpAudience is { Length: > 0 } idpAudience && (string.IsNullOrWhiteSpace(idpAudience) || idpAudience.Trim() != idpAudience))
            {
                errors.Add($"{key}:IdpAudience must be the exact aud the IdP puts in this application's ID tokens (its client id at the IdP), without surrounding spaces.");
            }
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    /// <summary>
    /// Hosts that browsers treat as secure contexts over plain http (W3C Secure Contexts §3.1, "potentially
    /// trustworthy origin"): <c>localhost</c> and loopback addresses (127.0.0.0/8, ::1), with any port.
    /// </summary>
    private static bool IsPotentiallyTrustworthyHost(Uri uri) =>
        uri.HostNameType == UriHostNameType.Dns
            ? string.Equals(uri.Host, "localhost", StringComparison.OrdinalIgnoreCase)
            : IPAddress.TryParse(uri.DnsSafeHost, out var address) && IPAddress.IsLoopback(address);
}
