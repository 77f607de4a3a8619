using TokenService.Sessions;

namespace TokenService.Events;

/// <summary>What one event asks for.</summary>
public sealed record IdpEventDecision(IdpEventEnvelope Event, string? UserId, SessionEndReason? Reason, DateTimeOffset? OccurredAt, string? IgnoredBecause)
{
    /// <summary>What identifies the event across deliveries: a SET's issuer and jti; otherwise the envelope's source and id.</summary>
    public string DeduplicationKey { get; init; } = (Event.Source ?? "-") + "|" + Event.Id;

    /// <summary>The Microsoft Graph lifecycle notification this event is (reauthorizationRequired, subscriptionRemoved, missed), if any.</summary>
    public string? GraphLifecycleEvent { get; init; }

    /// <summary>End the sessions of <paramref name="userId"/>; a user id the token exchange would refuse makes the event malformed.</summary>
    internal static IdpEventDecision Revoke(IdpEventEnvelope e, string userId, SessionEndReason reason, DateTimeOffset? occurredAt)
    {
        // The rule the token exchange applies (UserIds): an id refused here could never have opened a session.
        // MalformedEventException messages name events through LogValue too: the Functions host logs the message of an
        // exception the IdpEvents trigger throws, and the webhook returns it in problem details.
        if (!UserIds.IsValid(userId))
        {
            throw new MalformedEventException($"Event {LogValue.Of(e.Id)} names no valid user.");
        }

        return new(e, userId, reason, occurredAt, null);
    }

    /// <summary>Acknowledge the event without action, for the reason given.</summary>
    internal static IdpEventDecision Ignore(IdpEventEnvelope e, DateTimeOffset? occurredAt, string because) => new(e, null, null, occurredAt, because);
}
