using System.Collections.Concurrent;

namespace TokenService.Dpop;

/// <summary>Keys with an expiry, for the embedded deny list and replay cache; cleanup removes expired keys only.</summary>
internal sealed class InMemoryExpiringSet
{
    private readonly ConcurrentDictionary<string, DateTimeOffset> _entries = new(StringComparer.Ordinal);

    /// <summary>Adds <paramref name="key"/> unless a live entry exists; an expired entry is replaced.</summary>
    public bool TryAdd(string key, DateTimeOffset expiresAt, DateTimeOffset now)
    {
        while (true)
        {
            if (_entries.TryAdd(key, expiresAt))
            {
                return true;
            }

            if (!_entries.TryGetValue(key, out var existing) || existing > now)
            {
                return false;
            }

            if (_entries.TryUpdate(key, expiresAt, existing))
            {
                return true;
            }
        }
    }

    /// <summary>Adds or extends an entry.</summary>
    public void Set(string key, DateTimeOffset expiresAt) =>
        _entries.AddOrUpdate(key, expiresAt, (_, existing) => existing > expiresAt ? existing : expiresAt);

    public bool Contains(string key) => _entries.ContainsKey(key);

    /// <summary>How many keys are held, expired ones included until a purge (the bounded-storage checks read it).</summary>
    public int Count => _entries.Count;

    public void Remove(string key) => _entries.TryRemove(key, out _);

    public int Purge(DateTimeOffset now)
    {
        var removed = 0;
        foreach (var (key, until) in _entries)
        {
            if (until <= now && _entries.TryRemove(new KeyValuePair<string, DateTimeOffset>(key, until)))
            {
                removed++;
            }
        }

        return removed;
    }
}
