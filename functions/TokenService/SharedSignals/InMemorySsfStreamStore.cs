using System.Collections.Concurrent;

namespace TokenService.SharedSignals;

/// <summary>
/// The streams and their outboxes in this process's memory: the default, for Development and a single instance. The
/// <see cref="SsfStream"/> objects are the state; every change is made under their <see cref="SsfStream.Gate"/>. Every
/// operation completes synchronously. A restart loses every stream and every held event.
/// </summary>
public sealed class InMemorySsfStreamStore : ISsfStreamStore
{
    private readonly ConcurrentDictionary<string, SsfStream> _streams = new(StringComparer.Ordinal);
    private readonly Lock _createGate = new();

    public bool IsEmpty => _streams.IsEmpty;

    /// <summary>The synchronous form of <see cref="TryAddAsync"/> (the registry's <c>TryCreate</c>).</summary>
    public bool TryAdd(SsfStream stream, int maxPerReceiver)
    {
        lock (_createGate)
        {
            if (_streams.Values.Count(s => s.OwnerClientId == stream.OwnerClientId) >= maxPerReceiver)
            {
                return false;
            }

            return _streams.TryAdd(stream.StreamId, stream);
        }
    }

    public ValueTask<bool> TryAddAsync(SsfStream stream, int maxPerReceiver, CancellationToken cancellationToken) =>
        ValueTask.FromResult(TryAdd(stream, maxPerReceiver));

    public ValueTask<SsfStream?> GetAsync(string streamId, CancellationToken cancellationToken) =>
        ValueTask.FromResult(_streams.GetValueOrDefault(streamId));

    public ValueTask<IReadOnlyList<SsfStream>> ListAsync(CancellationToken cancellationToken) =>
        ValueTask.FromResult<IReadOnlyList<SsfStream>>([.. _streams.Values]);

    public ValueTask<SsfStream?> UpdateAsync(string streamId, Func<SsfStream, bool> change, CancellationToken cancellationToken)
    {
        if (!_streams.TryGetValue(streamId, out var stream))
        {
            return ValueTask.FromResult<SsfStream?>(null);
        }

        lock (stream.Gate)
        {
            change(stream);
        }

        return ValueTask.FromResult<SsfStream?>(stream);
    }

    public ValueTask<bool> DeleteAsync(string streamId, CancellationToken cancellationToken)
    {
        SsfStream? removed;
        lock (_createGate)
        {
            if (!_streams.TryRemove(streamId, out removed))
            {
                return ValueTask.FromResult(false);
            }
        }

        // Its held events go with it (a snapshot somebody still holds must not keep them alive).
        lock (removed.Gate)
        {
            removed.ClearLocked();
        }

        return ValueTask.FromResult(true);
    }

    public ValueTask<SsfEnqueueResult> EnqueueAsync(SsfStream stream, IReadOnlyList<SsfOutboxEntry> entries, int capacity, CancellationToken cancellationToken)
    {
        var queued = 0;
        long dropped;
        lock (stream.Gate)
        {
            var before = stream.Dropped;
            foreach (var entry in entries)
            {
                if (stream.EnqueueLocked(entry))
                {
                    queued++;
                }
            }

            dropped = stream.Dropped - before;
        }

        return ValueTask.FromResult(new SsfEnqueueResult(queued, dropped));
    }

    public ValueTask<SsfPollResult> PollAsync(SsfStream stream, IReadOnlyCollection<string> acknowledged, int maxEvents, CancellationToken cancellationToken)
    {
        lock (stream.Gate)
        {
            var before = stream.Pending;
            var (batch, more) = stream.PollLocked(acknowledged, maxEvents);
            return ValueTask.FromResult(new SsfPollResult(batch, more, before - stream.Pending));
        }
    }

    public ValueTask<SsfOutboxEntry?> PeekAsync(SsfStream stream, CancellationToken cancellationToken)
    {
        lock (stream.Gate)
        {
            return ValueTask.FromResult(stream.PeekLocked());
        }
    }

    public ValueTask RemoveAsync(SsfStream stream, SsfOutboxEntry entry, CancellationToken cancellationToken)
    {
        lock (stream.Gate)
        {
            stream.RemoveLocked(entry);
        }

        return ValueTask.CompletedTask;
    }

    /// <summary>Nothing to do: the entry object is the one held, its <see cref="SsfOutboxEntry.Set"/> is kept with it.</summary>
    public ValueTask SaveSetAsync(SsfStream stream, SsfOutboxEntry entry, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    public ValueTask ClearAsync(SsfStream stream, CancellationToken cancellationToken)
    {
        lock (stream.Gate)
        {
            stream.ClearLocked();
        }

        return ValueTask.CompletedTask;
    }

    public ValueTask<int> CountAsync(SsfStream stream, CancellationToken cancellationToken) => ValueTask.FromResult(stream.Pending);
}
