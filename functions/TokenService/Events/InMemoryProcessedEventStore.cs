using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;
using TokenService.Configuration;
using TokenService.Sessions;

namespace TokenService.Events;

/// <summary>
/// Embedded-default processed-event store, bounded: it keeps SHA-256 hashes of the keys (32 bytes each, whatever the
/// length of the event ids) and at most <see cref="EventsOptions.ProcessedEventCapacity"/> of them, forgetting the
/// oldest first. A forgotten key means a very late redelivery could be applied again, which is idempotent and never
/// ends a session opened after the event; the Table Storage store has no such bound.
/// </summary>
public sealed class InMemoryProcessedEventStore : IProcessedEventStore, IExpiredStateCleaner
{
    private readonly Lock _gate = new();
    private readonly Dictionary<KeyHash, LinkedListNode<Entry>> _entries = [];
    private readonly LinkedList<Entry> _byAge = new(); // first = oldest insertion
    private readonly int _capacity;
    private readonly TimeProvider _time;

    public InMemoryProcessedEventStore(IOptions<EventsOptions> options, TimeProvider time)
    {
        _capacity = Math.Max(1, options.Value.ProcessedEventCapacity);
        _time = time;
    }

    /// <summary>How many processed events are remembered.</summary>
    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _entries.Count;
            }
        }
    }

    public int Capacity => _capacity;

    public ValueTask<bool> IsProcessedAsync(string key, CancellationToken cancellationToken)
    {
        var hash = KeyHash.Of(key);
        var now = _time.GetUtcNow();
        lock (_gate)
        {
            return ValueTask.FromResult(_entries.TryGetValue(hash, out var node) && node.Value.ForgetAfter > now);
        }
    }

    public ValueTask MarkProcessedAsync(string key, DateTimeOffset forgetAfter, CancellationToken cancellationToken)
    {
        var hash = KeyHash.Of(key);
        lock (_gate)
        {
            if (_entries.TryGetValue(hash, out var existing))
            {
                if (forgetAfter > existing.Value.ForgetAfter)
                {
                    existing.Value = existing.Value with { ForgetAfter = forgetAfter };
                }

                return ValueTask.CompletedTask;
            }

            while (_entries.Count >= _capacity && _byAge.First is { } oldest)
            {
                _entries.Remove(oldest.Value.Hash);
                _byAge.RemoveFirst();
            }

            _entries[hash] = _byAge.AddLast(new Entry(hash, forgetAfter));
        }

        return ValueTask.CompletedTask;
    }

    public Task<int> PurgeExpiredAsync(DateTimeOffset now, CancellationToken cancellationToken)
    {
        var removed = 0;
        lock (_gate)
        {
            for (var node = _byAge.First; node is not null;)
            {
                var next = node.Next;
                if (node.Value.ForgetAfter <= now)
                {
                    _entries.Remove(node.Value.Hash);
                    _byAge.Remove(node);
                    removed++;
                }

                node = next;
            }
        }

        return Task.FromResult(removed);
    }

    private readonly record struct Entry(KeyHash Hash, DateTimeOffset ForgetAfter);

    /// <summary>SHA-256 of the key's UTF-8 bytes, held as four integers.</summary>
    private readonly record struct KeyHash(ulong A, ulong B, ulong C, ulong D)
    {
        public static KeyHash Of(string key)
        {
            Span<byte> digest = stackalloc byte[SHA256.HashSizeInBytes];
            SHA256.HashData(Encoding.UTF8.GetBytes(key), digest);
            return new KeyHash(
                BinaryPrimitives.ReadUInt64LittleEndian(digest),
                BinaryPrimitives.ReadUInt64LittleEndian(digest[8..]),
                BinaryPrimitives.ReadUInt64LittleEndian(digest[16..]),
                BinaryPrimitives.ReadUInt64LittleEndian(digest[24..]));
        }
    }
}
