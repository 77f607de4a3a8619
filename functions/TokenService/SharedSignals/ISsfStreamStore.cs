namespace TokenService.SharedSignals;

/// <summary>
/// Where the transmitter's event streams (SSF 1.0 §8.1.1) and their held events live: in memory
/// (<see cref="InMemorySsfStreamStore"/>, one instance, lost at a restart) or in Table Storage (the Azure adapter's
/// <c>TableSsfStreamStore</c>, shared by every instance and kept across restarts; docs/table-storage.md). A store that
/// cannot answer throws <see cref="DependencyUnavailableException"/> (the stream API answers 503 and changes nothing).
/// <para>
/// Streams returned by the memory store are the state itself (changed under <see cref="SsfStream.Gate"/>); the Table
/// store returns a snapshot with its <see cref="SsfStream.Version"/>, and every change goes through
/// <see cref="UpdateAsync"/>, a read-modify-write conditional on that version (If-Match), so that two instances
/// changing one stream never lose either change.
/// </para>
/// </summary>
public interface ISsfStreamStore
{
    /// <summary>
    /// Stores the new <paramref name="stream"/> unless its receiver has <paramref name="maxPerReceiver"/> streams already
    /// (then false: SSF 1.0 §8.1.1.1 answers 409).
    /// </summary>
    ValueTask<bool> TryAddAsync(SsfStream stream, int maxPerReceiver, CancellationToken cancellationToken);

    /// <summary>The stream, or null when there is none with that id.</summary>
    ValueTask<SsfStream?> GetAsync(string streamId, CancellationToken cancellationToken);

    /// <summary>Every stream of every receiver.</summary>
    ValueTask<IReadOnlyList<SsfStream>> ListAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Applies <paramref name="change"/> to the stream's current state and stores the result when it returns true,
    /// conditional on the state it was applied to; on a conflict (another instance wrote first) it is applied again to
    /// the new state. The state after the call (changed or not), or null when the stream is gone.
    /// </summary>
    ValueTask<SsfStream?> UpdateAsync(string streamId, Func<SsfStream, bool> change, CancellationToken cancellationToken);

    /// <summary>Deletes the stream and every event it holds; false when there was none.</summary>
    ValueTask<bool> DeleteAsync(string streamId, CancellationToken cancellationToken);

    /// <summary>
    /// Queues <paramref name="entries"/>, in order, unless the stream is disabled (SSF 1.0 §8.1.2: a disabled stream
    /// holds nothing). Past <paramref name="capacity"/> held events the oldest go and are counted in
    /// <see cref="SsfStream.Dropped"/> (SSF 1.0 §8.1.2 lets a transmitter drop held events).
    /// </summary>
    ValueTask<SsfEnqueueResult> EnqueueAsync(SsfStream stream, IReadOnlyList<SsfOutboxEntry> entries, int capacity, CancellationToken cancellationToken);

    /// <summary>
    /// One poll (RFC 8936 §2.4): removes the events whose <c>jti</c> is in <paramref name="acknowledged"/>, then, unless the
    /// stream is paused or disabled, returns up to <paramref name="maxEvents"/> of the oldest held events in order.
    /// </summary>
    ValueTask<SsfPollResult> PollAsync(SsfStream stream, IReadOnlyCollection<string> acknowledged, int maxEvents, CancellationToken cancellationToken);

    /// <summary>Push: the oldest held event, or null when the stream holds none or is not enabled.</summary>
    ValueTask<SsfOutboxEntry?> PeekAsync(SsfStream stream, CancellationToken cancellationToken);

    /// <summary>Removes the event (delivered or refused) if it is still held.</summary>
    ValueTask RemoveAsync(SsfStream stream, SsfOutboxEntry entry, CancellationToken cancellationToken);

    /// <summary>Keeps the event's signed SET (<see cref="SsfOutboxEntry.Set"/>), so that a redelivery, by any instance, is the same SET.</summary>
    ValueTask SaveSetAsync(SsfStream stream, SsfOutboxEntry entry, CancellationToken cancellationToken);

    /// <summary>Drops every held event (the stream became disabled).</summary>
    ValueTask ClearAsync(SsfStream stream, CancellationToken cancellationToken);

    /// <summary>How many events the stream holds.</summary>
    ValueTask<int> CountAsync(SsfStream stream, CancellationToken cancellationToken);
}

/// <summary>What <see cref="ISsfStreamStore.EnqueueAsync"/> did: events queued (0 on a disabled stream) and old ones dropped to make room.</summary>
public readonly record struct SsfEnqueueResult(int Queued, long Dropped);

/// <summary>One poll's answer: the SETs to send, oldest first, and whether more are held (RFC 8936 §2.3 <c>moreAvailable</c>).</summary>
public sealed record SsfPollResult(IReadOnlyList<SsfOutboxEntry> Batch, bool MoreAvailable, int Acknowledged);
