using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace TokenService.Configuration;

/// <summary>Start-up validation of <c>Events</c>.</summary>
public sealed class EventsOptionsValidator(IHostEnvironment environment) : IValidateOptions<EventsOptions>
{
    public ValidateOptionsResult Validate(string? name, EventsOptions o)
    {
        var errors = new List<string>();
        if (string.IsNullOrEmpty(o.WebhookSecret) && !environment.IsDevelopment())
        {
            errors.Add("Events:WebhookSecret is required outside Development: Event Grid deliveries must carry it (header X-Webhook-Key, or ?key=).");
        }
        else if (o.WebhookSecret is { Length: > 0 and < 16 })
        {
            errors.Add("Events:WebhookSecret must be at least 16 characters.");
        }

        if (!string.IsNullOrWhiteSpace(o.SsfIssuer) && string.IsNullOrWhiteSpace(o.SsfJwksUri) == string.IsNullOrWhiteSpace(o.SsfJwksPath))
        {
            errors.Add("With Events:SsfIssuer set exactly one of Events:SsfJwksUri or Events:SsfJwksPath is required.");
        }

        if (!string.IsNullOrWhiteSpace(o.SsfJwksUri) && (!Uri.TryCreate(o.SsfJwksUri, UriKind.Absolute, out var ssfJwks) || ssfJwks.Scheme != Uri.UriSchemeHttps))
        {
            // Whoever can alter these keys in transit can sign security events that end any user's sessions: keys must
            // come from a source whose provenance is trusted (RFC 7517 §9.1), so over TLS only.
            errors.Add("Events:SsfJwksUri must be an absolute https URL (in every environment), e.g. https://transmitter.example/jwks.json.");
        }

        if (!string.IsNullOrWhiteSpace(o.SsfJwksPath) && !File.Exists(o.SsfJwksPath))
        {
            errors.Add($"Events:SsfJwksPath points to a file that does not exist: {o.SsfJwksPath}.");
        }

        if (o.DeduplicationWindow <= TimeSpan.Zero)
        {
            errors.Add("Events:DeduplicationWindow must be positive, e.g. 1.01:00:00 (beyond Event Grid's 24-hour retry window).");
        }

        // RFC 8417 §2.2: iat is when the SET was issued. A SET older than this is refused; it must not outlive the
        // deduplication window, or a SET replayed after its id was forgotten would be acted on again.
        if (o.MaxSecurityEventAge <= TimeSpan.Zero)
        {
            errors.Add("Events:MaxSecurityEventAge must be positive, e.g. 1.00:00:00.");
        }
        else if (o.DeduplicationWindow > TimeSpan.Zero && o.MaxSecurityEventAge > o.DeduplicationWindow)
        {
            errors.Add($"Events:MaxSecurityEventAge ({o.MaxSecurityEventAge}) must not exceed Events:DeduplicationWindow ({o.DeduplicationWindow}): a SET is remembered only that long.");
        }

        if (o.EventTimeSkew < TimeSpan.Zero || o.EventTimeSkew > TimeSpan.FromMinutes(5))
        {
            errors.Add("Events:EventTimeSkew must be between 00:00:00 and 00:05:00 (default 00:00:05).");
        }

        if (o.ProcessedEventCapacity is < 1 or > 10_000_000)
        {
            errors.Add("Events:ProcessedEventCapacity must be between 1 and 10000000 (default 100000).");
        }

        // Microsoft Graph subscriptions: clientState is at most 128 characters.
        if (o.GraphClientState is { Length: > 0 } clientState && (string.IsNullOrWhiteSpace(clientState) || clientState.Length > 128))
        {
            errors.Add("Events:GraphClientState, when set, must be 1 to 128 characters: the clientState of the Microsoft Graph subscription.");
        }

        var subscription = o.GraphSubscription;
        if (subscription.Enabled)
        {
            if (!subscription.NotificationUrl!.StartsWith("EventGrid:?", StringComparison.Ordinal) && !(Uri.TryCreate(subscription.NotificationUrl, UriKind.Absolute, out var url) && url.Scheme == Uri.UriSchemeHttps))
            {
                errors.Add("Events:GraphSubscription:NotificationUrl must be an Event Grid partner topic (EventGrid:?azuresubscriptionid=…&resourcegroup=…&partnertopic=…&location=…) or an absolute https URL.");
            }

            // The app creates the subscription as its own identity through Events:GraphEndpoint, and Graph echoes the
            // clientState in every notification, which is how a notification is known to come from our subscription.
            if (string.IsNullOrWhiteSpace(o.GraphEndpoint))
            {
                errors.Add("Events:GraphSubscription:NotificationUrl needs Events:GraphEndpoint (e.g. https://graph.microsoft.com): the app manages the subscription through it.");
            }

            if (string.IsNullOrWhiteSpace(o.GraphClientState))
            {
                errors.Add("Events:GraphSubscription:NotificationUrl needs Events:GraphClientState: the subscription is created with it and every notification must carry it.");
            }
        }

        if (subscription.RenewBefore <= TimeSpan.FromDays(1) || subscription.RenewBefore >= GraphSubscriptionOptions.MaxLifetime - subscription.ExpirationMargin)
        {
            errors.Add("Events:GraphSubscription:RenewBefore must be more than 1 day (the check runs daily) and less than the subscription's lifetime (default 7.00:00:00).");
        }

        if (subscription.ExpirationMargin < TimeSpan.Zero || subscription.ExpirationMargin > TimeSpan.FromDays(1))
        {
            errors.Add("Events:GraphSubscription:ExpirationMargin must be between 00:00:00 and 1.00:00:00 (default 01:00:00).");
        }

        if (subscription.CheckInterval < TimeSpan.FromMinutes(1) || subscription.CheckInterval >= subscription.RenewBefore)
        {
            errors.Add("Events:GraphSubscription:CheckInterval must be at least 1 minute and less than Events:GraphSubscription:RenewBefore (default 1.00:00:00).");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
