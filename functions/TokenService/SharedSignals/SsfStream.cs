using TokenService.Sessions;

namespace TokenService.SharedSignals;

/// <summary>
/// One event to transmit on a stream: a CAEP session-revoked (CAEP 1.0 §3.1), one of our access-token-revoked and
/// signing-key-revoked events (<see cref="SsfProtocol"/>) or a verification event (SSF 1.0 §8.1.4.1).
/// Its <c>jti</c> is fixed when it is queued, and the SET is signed once, at its first transmission, so that a
/// redelivery carries the same SET (RFC 8936 §2.4: the receiver acknowledges by <c>jti</c>) and no signature is made in
/// the request that ended the session.
/// </summary>
public sealed class SsfOutboxEntry
{
    private string? _set;

    public required string Jti { get; init; }

    public required string EventType { get; init; }

    /// <summary>When the event happened: the committed end of the session, or the verification request.</summary>
    public required DateTimeOffset OccurredAt { get; init; }

    /// <summary>SSF 1.0 §4.1.9 <c>txn</c>: one value per committed change (a force logout ending three sessions shares it).</summary>
    public string? Txn { get; init; }

    /// <summary>The ended session's <c>sid</c>, for session-revoked.</summary>
    public string? SessionId { get; init; }

    /// <summary>The <c>sub</c> of the ended session's tokens, for session-revoked.</summary>
    public string? Subject { get; init; }

    public SessionEndReason? Reason { get; init; }

    /// <summary>The revoked access token's <c>jti</c> (access-token-revoked) or signing key's <c>kid</c> (signing-key-revoked).</summary>
    public string? RevokedId { get; init; }

    /// <summary>The revoked access token's <c>exp</c> (access-token-revoked): how long a receiver keeps its <c>jti</c> refused.</summary>
    public DateTimeOffset? RevokedUntil { get; init; }

    /// <summary>The receiver's <c>state</c> for a verification event (SSF 1.0 §8.1.4.2), echoed back.</summary>
    public string? State { get; init; }

    /// <summary>
    /// Where the stream store keeps this event (the Table store's RowKey, which orders the stream's events); null in
    /// memory, where the outbox's list order is the order.
    /// </summary>
    public string? StoreKey { get; init; }

    /// <summary>The signed SET once made; null before the first transmission.</summary>
    public string? Set
    {
        get => Volatile.Read(ref _set);
        set => Volatile.Write(ref _set, value);
    }
}

/// <summary>
/// A receiver's event stream (SSF 1.0 §8.1.1): its configuration, status, push bookkeeping and lease. In the memory store
/// (<see cref="InMemorySsfStreamStore"/>) the object is the stream itself, with its bounded outbox of events not yet
/// acknowledged; the Table store returns a snapshot of the stream row (<see cref="Version"/> its ETag) whose outbox
/// stays empty: its events are rows of their own. Every member that changes is read and written under <see cref="Gate"/>.
/// </summary>
public sealed class SsfStream(string streamId, string ownerClientId, IReadOnlyList<string> audiences, int capacity)
{
    private readonly LinkedList<SsfOutboxEntry> _outbox = new();

    public Lock Gate { get; } = new();

    /// <summary>SSF 1.0 §8.1.1 <c>stream_id</c>: random, of RFC 3986 §2.3 unreserved characters.</summary>
    public string StreamId { get; } = streamId;

    /// <summary>The resource-server client that created the stream; only it can see, change or poll it.</summary>
    public string OwnerClientId { get; } = ownerClientId;

    /// <summary>SSF 1.0 §8.1.1 <c>aud</c>: the receiver's audiences when the stream was created; it cannot be updated.</summary>
    public IReadOnlyList<string> Audiences { get; } = audiences;

    /// <summary>Receiver-supplied; null when the receiver named none (then every supported event is delivered).</summary>
    public IReadOnlyList<string>? EventsRequested { get; set; }

    public string? Description { get; set; }

    public SsfStreamStatus Status { get; set; } = SsfStreamStatus.Enabled;

    public string? StatusReason { get; set; }

    /// <summary>
    /// Push delivery (RFC 8935; SSF 1.0 §6.1.1): the receiver's <c>endpoint_url</c> and <c>authorization_header</c>;
    /// null for poll delivery (RFC 8936), the default.
    /// </summary>
    public SsfPushDelivery? Push { get; set; }

    /// <summary>Push only: failed attempts in a row (the back-off's exponent); 0 after a delivery.</summary>
    public int PushFailures { get; set; }

    /// <summary>Push only: no attempt before this time (a back-off after a failure); null when an attempt may go now.</summary>
    public DateTimeOffset? PushRetryAt { get; set; }

    /// <summary>
    /// Events this stream will never deliver, since it was created: dropped because the outbox was full (the oldest
    /// goes), or not queued because the outbox write failed. Its receiver reads it (stream configuration
    /// <c>tokenservice_events_dropped</c>) as a gap.
    /// </summary>
    public long Dropped { get; set; }

    /// <summary>
    /// The store's version of this state (the Table row's ETag), the condition of its next write (If-Match); null in
    /// memory, where the object is the state itself.
    /// </summary>
    public string? Version { get; set; }

    /// <summary>When the stream was created.</summary>
    public DateTimeOffset CreatedAt { get; set; }

    /// <summary>
    /// The last sign of a live receiver: the stream's creation, a poll, a change of its configuration or status, or a
    /// push the receiver accepted. A stream without one for <c>SharedSignals:StreamInactivityTimeout</c> is deleted.
    /// </summary>
    public DateTimeOffset LastActivityAt { get; set; }

    /// <summary>The last delivery the receiver acknowledged (a push answered 202, or a poll that acknowledged SETs); null before the first.</summary>
    public DateTimeOffset? LastDeliveryAt { get; set; }

    /// <summary>Push only: the delivery loop (one per instance) that may send this stream's SETs until <see cref="LeaseUntil"/>.</summary>
    public string? LeaseOwner { get; set; }

    /// <summary>Push only: when <see cref="LeaseOwner"/>'s lease ends (another instance may take it then).</summary>
    public DateTimeOffset? LeaseUntil { get; set; }

    /// <summary>Events waiting for acknowledgement.</summary>
    public int Pending
    {
        get
        {
            lock (Gate)
            {
                return _outbox.Count;
            }
        }
    }

    /// <summary>
    /// SSF 1.0 §8.1.1 <c>events_delivered</c>: the supported events the receiver requested (all supported ones when it
    /// requested none); a requested URI this transmitter does not know is ignored, as the section requires.
    /// </summary>
    public IReadOnlyList<string> EventsDelivered
    {
        get
        {
            var requested = EventsRequested;
            return requested is null ? SsfProtocol.EventsSupported : [.. SsfProtocol.EventsSupported.Where(requested.Contains)];
        }
    }

    /// <summary>Whether session-revoked events go on this stream (read without allocating on the emission path).</summary>
    public bool DeliversSessionRevoked => Delivers(SsfProtocol.SessionRevokedEventType);

    /// <summary>
    /// Whether events of <paramref name="eventType"/> go on this stream (SSF 1.0 §8.1.1: every supported event when the
    /// receiver requested none, else only those it requested), read without allocating on the emission path.
    /// </summary>
    public bool Delivers(string eventType)
    {
        var requested = EventsRequested;
        if (requested is null)
        {
            return true;
        }

        for (var i = 0; i < requested.Count; i++)
        {
            if (requested[i] == eventType)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// Queues <paramref name="entry"/> unless the stream is disabled (SSF 1.0 §8.1.2: a disabled stream holds nothing);
    /// a paused stream holds it. When the outbox is full the oldest event goes and is counted in <see cref="Dropped"/>
    /// (SSF 1.0 §8.1.2 lets a transmitter drop held events). Returns whether it was queued. The caller holds <see cref="Gate"/>.
    /// </summary>
    public bool EnqueueLocked(SsfOutboxEntry entry)
    {
        if (Status == SsfStreamStatus.Disabled)
        {
            return false;
        }

        if (_outbox.Count >= capacity)
        {
            _outbox.RemoveFirst();
            Dropped++;
        }

        _outbox.AddLast(entry);
        return true;
    }

    /// <summary>
    /// Push: the oldest held event, the next to transmit (RFC 8935 deliveries go one at a time, so in the order the
    /// events were queued), or null when the stream is not enabled (SSF 1.0 §8.1.2: paused or disabled transmits
    /// nothing) or holds nothing. The caller holds <see cref="Gate"/>.
    /// </summary>
    public SsfOutboxEntry? PeekLocked() => Status == SsfStreamStatus.Enabled ? _outbox.First?.Value : null;

    /// <summary>Removes <paramref name="entry"/> (delivered or refused) if it is still held. The caller holds <see cref="Gate"/>.</summary>
    public void RemoveLocked(SsfOutboxEntry entry)
    {
        for (var node = _outbox.First; node is not null; node = node.Next)
        {
            if (ReferenceEquals(node.Value, entry))
            {
                _outbox.Remove(node);
                return;
            }
        }
    }

    /// <summary>Drops every held event (the stream became disabled). The caller holds <see cref="Gate"/>.</summary>
    public void ClearLocked() => _outbox.Clear();

    /// <summary>
    /// One poll (RFC 8936 §2.4): removes the acknowledged <paramref name="acknowledged"/> and the ones the receiver
    /// reported errors for, then, unless the stream is paused or disabled (SSF 1.0 §8.1.2: nothing is transmitted), takes
    /// up to <paramref name="maxEvents"/> of the oldest unacknowledged events, in the order they were queued. Events
    /// already sent and not acknowledged are sent again: delivery is at least once. The caller holds <see cref="Gate"/>.
    /// </summary>
    public (List<SsfOutboxEntry> Batch, bool MoreAvailable) PollLocked(IReadOnlyCollection<string> acknowledged, int maxEvents)
    {
        if (acknowledged.Count > 0)
        {
            for (var node = _outbox.First; node is not null;)
            {
                var next = node.Next;
                if (acknowledged.Contains(node.Value.Jti))
                {
                    _outbox.Remove(node);
                }

                node = next;
            }
        }

        var batch = new List<SsfOutboxEntry>(Math.Min(maxEvents, _outbox.Count));
        if (Status != SsfStreamStatus.Enabled)
        {
            return (batch, false);
        }

        foreach (var entry in _outbox)
        {
            if (batch.Count == maxEvents)
            {
                break;
            }

            batch.Add(entry);
        }

        return (batch, _outbox.Count > batch.Count);
    }
}

/// <summary>SSF 1.0 §8.1.1 <c>delivery</c> of a push stream (RFC 8935): where to POST and the Authorization header to send.</summary>
public sealed record SsfPushDelivery(Uri EndpointUrl, string? AuthorizationHeader);
