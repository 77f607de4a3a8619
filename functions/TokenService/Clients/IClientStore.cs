namespace TokenService.Clients;

/// <summary>Port for registered clients.</summary>
public interface IClientStore
{
    RegisteredClient? Find(string clientId);

    /// <summary>True when <paramref name="origin"/> is allowed for any spa client (CORS answers only those).</summary>
    bool IsAllowedOrigin(string origin);
}
