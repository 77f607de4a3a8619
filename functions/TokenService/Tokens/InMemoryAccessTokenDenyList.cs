using System.Collections.Concurrent;
using TokenService.Sessions;

namespace TokenService.Tokens;

/// <summary>Embedded-default deny list.</summary>
public sealed class InMemoryAccessTokenDenyList : IAccessTokenDenyList, IExpiredStateCleaner
{
    private readonly ConcurrentDictionary<string, DateTimeOffset> _denied = new(StringComparer.Ordinal);

    public ValueTask DenyAsync(string jti, DateTimeOffset expiresAt, CancellationToken cancellationToken)
    {
        _denied.AddOrUpdate(jti, expiresAt, (_, existing) => existing > expiresAt ? existing : expiresAt);
        return ValueTask.CompletedTask;
    }

    public ValueTask<bool> IsDeniedAsync(string jti, CancellationToken cancellationToken) =>
        ValueTask.FromResult(_denied.ContainsKey(jti));

    public Task<int> PurgeExpiredAsync(DateTimeOffset now, CancellationToken cancellationToken)
    {
        var removed = 0;
        foreach (var (jti, until) in _denied)
        {
            if (until <= now && _denied.TryRemove(new KeyValuePair<string, DateTimeOffset>(jti, until)))
            {
                removed++;
            }
        }

        return Task.FromResult(removed);
    }
}
