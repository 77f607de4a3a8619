using TokenService.Sessions;

namespace TokenService.Events;

/// <summary>Event types this service understands (docs/idp-events.md has sample payloads).</summary>
public static class IdpEventTypes
{
    // Our own generic schema: data = { "userId": "…", "occurredAt"?: "2026-11-23T05:00:00Z" }.
    public const string AccountDisabled = "TokenService.Idp.AccountDisabled";
    public const string AccountDeleted = "TokenService.Idp.AccountDeleted";
    public const string CredentialChanged = "TokenService.Idp.CredentialChanged";
    public const string PasswordReset = "TokenService.Idp.PasswordReset";
    public const string SessionsRevoked = "TokenService.Idp.SessionsRevoked";

    /// <summary>data = a Security Event Token (RFC 8417) as a JSON string.</summary>
    public const string SecurityEvent = "TokenService.Idp.SecurityEvent";

    // Microsoft Graph change notifications through the Event Grid partner topic.
    public const string GraphUserDeleted = "Microsoft.Graph.UserDeleted";
    public const string GraphUserUpdated = "Microsoft.Graph.UserUpdated";

    /// <summary>Every Microsoft Graph event type through the partner topic starts with this (matched ignoring case).</summary>
    public const string GraphPrefix = "Microsoft.Graph.";

    // Microsoft Graph lifecycle notifications (Graph docs, "Reduce missing subscriptions and change notifications"),
    // as the Event Grid partner topic types them; in the data, "lifecycleEvent" names them too.
    public const string GraphSubscriptionReauthorizationRequired = "Microsoft.Graph.SubscriptionReauthorizationRequired";
    public const string GraphSubscriptionRemoved = "Microsoft.Graph.SubscriptionRemoved";
    public const string GraphSubscriptionMissed = "Microsoft.Graph.SubscriptionMissed";

    // Event Grid system events.
    public const string SubscriptionValidation = Azure.Messaging.EventGrid.SystemEventNames.EventGridSubscriptionValidation;
    public const string SubscriptionDeleted = Azure.Messaging.EventGrid.SystemEventNames.EventGridSubscriptionDeleted;

    // OpenID Shared Signals: CAEP and RISC event type URIs.
    public const string CaepSessionRevoked = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";
    public const string CaepCredentialChange = "https://schemas.openid.net/secevent/caep/event-type/credential-change";
    public const string RiscAccountDisabled = "https://schemas.openid.net/secevent/risc/event-type/account-disabled";
    public const string RiscAccountPurged = "https://schemas.openid.net/secevent/risc/event-type/account-purged";
    public const string RiscCredentialCompromise = "https://schemas.openid.net/secevent/risc/event-type/credential-compromise";

    /// <summary>Auth0 log event codes (partner topic) that end a user's sessions.</summary>
    public static SessionEndReason? Auth0Reason(string code) => code switch
    {
        "sdu" => SessionEndReason.Auth0UserDeleted,
        "scp" => SessionEndReason.Auth0PasswordChanged,
        "limit_wc" => SessionEndReason.Auth0UserBlocked,
        "limit_sul" => SessionEndReason.Auth0UserBlocked,
        _ => null,
    };

    public static bool IsGraph(string type) => type.StartsWith(GraphPrefix, StringComparison.OrdinalIgnoreCase);

    /// <summary>The lifecycle event (reauthorizationRequired, subscriptionRemoved, missed) an event type names, or null.</summary>
    public static string? GraphLifecycleEvent(string type) =>
        type.Equals(GraphSubscriptionReauthorizationRequired, StringComparison.OrdinalIgnoreCase) ? "reauthorizationRequired"
        : type.Equals(GraphSubscriptionRemoved, StringComparison.OrdinalIgnoreCase) ? "subscriptionRemoved"
        : type.Equals(GraphSubscriptionMissed, StringComparison.OrdinalIgnoreCase) ? "missed"
        : null;

    public static SessionEndReason? SecurityEventReason(string eventType) => eventType switch
    {
        CaepSessionRevoked => SessionEndReason.SsfSessionRevoked,
        CaepCredentialChange => SessionEndReason.SsfCredentialChange,
        RiscAccountDisabled => SessionEndReason.SsfAccountDisabled,
        RiscAccountPurged => SessionEndReason.SsfAccountPurged,
        RiscCredentialCompromise => SessionEndReason.SsfCredentialCompromise,
        _ => null,
    };
}
