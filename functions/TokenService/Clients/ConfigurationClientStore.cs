using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;
using TokenService.Configuration;

namespace TokenService.Clients;

/// <summary>Clients from configuration section <c>Clients</c> (validated at start-up by <see cref="Configuration.ClientRegistryOptionsValidator"/>).</summary>
public sealed class ConfigurationClientStore : IClientStore
{
    private readonly Dictionary<string, RegisteredClient> _clients;
    private readonly HashSet<string> _origins;

    public ConfigurationClientStore(IOptions<ClientRegistryOptions> options)
    {
        _clients = new Dictionary<string, RegisteredClient>(StringComparer.Ordinal);
        _origins = new HashSet<string>(StringComparer.Ordinal);
        foreach (var c in options.Value.Clients)
        {
            var client = new RegisteredClient
            {
                ClientId = c.ClientId!,
                Type = RegisteredClient.ParseType(c.Type)!.Value,
                DisplayName = string.IsNullOrWhiteSpace(c.DisplayName) ? null : c.DisplayName.Trim(),
                SecretHash = string.IsNullOrEmpty(c.Secret) ? null : SHA256.HashData(Encoding.UTF8.GetBytes(c.Secret)),
                AllowedOrigins = c.AllowedOrigins.Select(NormalizeOrigin).ToHashSet(StringComparer.Ordinal),
                AllowedAudiences = [.. c.AllowedAudiences],
                AllowedScopes = [.. c.AllowedScopes],
                IdpAudience = string.IsNullOrEmpty(c.IdpAudience) ? null : c.IdpAudience,
                RequireDpop = c.RequireDpop,
            };
            _clients[client.ClientId] = client;
            if (client.Type == ClientType.Spa)
            {
                _origins.UnionWith(client.AllowedOrigins);
            }
        }
    }

    public RegisteredClient? Find(string clientId) => _clients.GetValueOrDefault(clientId);

    public bool IsAllowedOrigin(string origin) => _origins.Contains(origin);

    /// <summary>Origins compare as scheme://host[:port] without a trailing slash (RFC 6454 serialization).</summary>
    public static string NormalizeOrigin(string origin) => origin.Trim().TrimEnd('/');
}

/// <summary>The whole <c>Clients</c> section, bound as a list.</summary>
public sealed class ClientRegistryOptions
{
    public List<ClientOptions> Clients { get; set; } = [];
}
