using TokenService.Clients;
using TokenService.Keys;
using TokenService.Tokens;

namespace TokenService.SharedSignals;

/// <summary>
/// Queues the transmitter's events that do not end a session (docs/shared-signals.md, "The events"): an access token
/// revoked by its <c>jti</c> (<see cref="SsfProtocol.AccessTokenRevokedEventType"/>) on the streams of receivers sharing
/// an audience with the token (the rule introspection applies, as for session-revoked), and a signing key revoked by the
/// operator (<see cref="SsfProtocol.SigningKeyRevokedEventType"/>) on every stream, since every receiver verifies tokens
/// with the JWKS. Only on streams that deliver the event type (SSF 1.0 §8.1.1 <c>events_delivered</c>). Called after the
/// change is in force; queuing signs nothing, and the outbox write is started, not awaited.
/// </summary>
public sealed class SsfRevocationSignals(SsfStreamRegistry streams, IClientStore clients, TimeProvider time)
    : IAccessTokenRevokedSink, ISigningKeyRevokedSink
{
    public void AccessTokenRevoked(string jti, IReadOnlyList<string> audiences, DateTimeOffset expiresAt)
    {
        var now = time.GetUtcNow();
        if (expiresAt <= now)
        {
            // An expired token is refused for its exp already; as for idle and absolute expiry, nothing is sent.
            return;
        }

        string? txn = null;
        Enqueue(SsfProtocol.AccessTokenRevokedEventType, receiver => SsfStreamRegistry.SharesAudience(audiences, receiver.AllowedAudiences), () => new SsfOutboxEntry
        {
            Jti = SsfStreamRegistry.NewJti(),
            EventType = SsfProtocol.AccessTokenRevokedEventType,
            OccurredAt = now,
            Txn = txn ??= SsfStreamRegistry.NewJti(),
            RevokedId = jti,
            RevokedUntil = expiresAt,
        });
    }

    public void SigningKeyRevoked(string kid)
    {
        var now = time.GetUtcNow();
        string? txn = null;
        Enqueue(SsfProtocol.SigningKeyRevokedEventType, static _ => true, () => new SsfOutboxEntry
        {
            Jti = SsfStreamRegistry.NewJti(),
            EventType = SsfProtocol.SigningKeyRevokedEventType,
            OccurredAt = now,
            Txn = txn ??= SsfStreamRegistry.NewJti(),
            RevokedId = kid,
        });
    }

    /// <summary>
    /// One new event (its own <c>jti</c>, RFC 8417 §2.2) on each stream that delivers <paramref name="eventType"/> and
    /// whose receiver is still a resource server that <paramref name="concerns"/> selects; one <c>txn</c> for all of them
    /// (SSF 1.0 §4.1.9: one underlying change). Through the registry's outbox (its store), like session-revoked.
    /// </summary>
    private void Enqueue(string eventType, Func<RegisteredClient, bool> concerns, Func<SsfOutboxEntry> newEntry) =>
        streams.Queue(
            stream => stream.Delivers(eventType) && clients.Find(stream.OwnerClientId) is { Type: ClientType.ResourceServer } receiver && concerns(receiver)
                ? [newEntry()]
                : null,
            1,
            eventType);
}
