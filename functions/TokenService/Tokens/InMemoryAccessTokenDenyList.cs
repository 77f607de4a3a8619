using TokenService.Dpop;
using TokenService.Http;
using TokenService.Sessions;

namespace TokenService.Tokens;

/// <summary>Embedded-default deny list.</summary>
public sealed class InMemoryAccessTokenDenyList : IAccessTokenDenyList, IExpiredStateCleaner
{
    private readonly InMemoryExpiringSet _denied = new();

    public ValueTask DenyAsync(string jti, DateTimeOffset expiresAt, CancellationToken cancellationToken)
    {
        _denied.Set(jti, expiresAt);
        return ValueTask.CompletedTask;
    }

    /// <summary>How many deny-list entries are held (the bounded-storage checks read it).</summary>
    internal int Count => _denied.Count;

    public ValueTask<bool> IsDeniedAsync(string jti, CancellationToken cancellationToken) => ValueTask.FromResult(_denied.Contains(jti));

    public Task<int> PurgeExpiredAsync(DateTimeOffset now, CancellationToken cancellationToken) => Task.FromResult(_denied.Purge(now));
}
