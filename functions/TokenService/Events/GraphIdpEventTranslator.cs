using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TokenService.Configuration;
using TokenService.Jwt;
using TokenService.Sessions;

namespace TokenService.Events;

/// <summary>
/// Microsoft Graph change notifications through the Event Grid partner topic (<c>Microsoft.Graph.*</c>): the
/// subscription's clientState is checked, lifecycle notifications are flagged for
/// <see cref="GraphLifecycleNotifications"/>, <c>UserDeleted</c> ends the user's sessions and <c>UserUpdated</c>
/// (ids only) asks <see cref="IGraphUserLookup"/> whether the account is disabled or gone. Other Graph types are left
/// to the other translators.
/// </summary>
/// <param name="options">The events settings: the Graph clientState to expect.</param>
/// <param name="logger">The processor's logger, so that the category of event 5005 stays what log filters expect.</param>
/// <param name="graph">Looks up an updated user's account state; null where Graph is not configured.</param>
public sealed partial class GraphIdpEventTranslator(IOptions<EventsOptions> options, ILogger logger, IGraphUserLookup? graph = null) : IIdpEventTranslator
{
    public async ValueTask<IdpEventDecision?> TranslateAsync(IdpEventEnvelope e, CancellationToken cancellationToken)
    {
        if (!IdpEventTypes.IsGraph(e.Type))
        {
            return null;
        }

        var time = e.Time;
        CheckClientState(e);
        if (Lifecycle(e) is { } lifecycle)
        {
            return IdpEventDecision.Ignore(e, time, "Microsoft Graph lifecycle notification (" + lifecycle + ")") with { GraphLifecycleEvent = lifecycle };
        }

        switch (e.Type)
        {
            case IdpEventTypes.GraphUserDeleted:
                return IdpEventDecision.Revoke(e, UserId(e), SessionEndReason.GraphUserDeleted, time);
            case IdpEventTypes.GraphUserUpdated:
            {
                var userId = UserId(e);
                if (graph is null)
                {
                    return IdpEventDecision.Ignore(e, time, "UserUpdated carries ids only and no Microsoft Graph lookup is configured");
                }

                // Microsoft Entra events (Event Grid docs): a default user deletion is a soft delete, announced as
                // UserUpdated; from then on Graph answers 404 for the user. So 404 means deleted, never "enabled".
                return await graph.GetUserStateAsync(userId, cancellationToken) switch
                {
                    GraphUserState.Disabled => IdpEventDecision.Revoke(e, userId, SessionEndReason.GraphAccountDisabled, time),
                    GraphUserState.NotFound => IdpEventDecision.Revoke(e, userId, SessionEndReason.GraphUserDeleted, time),
                    GraphUserState.Enabled => IdpEventDecision.Ignore(e, time, "the account is enabled"),
                    _ => IdpEventDecision.Ignore(e, time, "Microsoft Graph did not say whether the account is enabled"),
                };
            }

            default:
                // Type names are matched exactly: another Graph type (or another spelling) is some other source's, or unknown.
                return null;
        }
    }

    // Microsoft Graph change notifications carry the subscription's clientState (Graph docs, "Receive change
    // notifications": validate clientState). When Events:GraphClientState is set, a notification without it or with
    // another value is refused; the whole delivery is malformed and nothing is processed.
    private void CheckClientState(IdpEventEnvelope e)
    {
        if (options.Value.GraphClientState is not { Length: > 0 } expected)
        {
            return;
        }

        var actual = JsonText.GetStringOrNull(e.Data, "clientState");
        if (actual is null || !CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(actual)), SHA256.HashData(Encoding.UTF8.GetBytes(expected))))
        {
            LogClientStateMismatch(logger, LogValue.Of(e.Type), LogValue.Of(e.Id));
            throw new MalformedEventException("A Microsoft Graph notification does not carry the subscription's clientState.");
        }
    }

    // The Event Grid type names the lifecycle notification; the notification's own "lifecycleEvent" says it too.
    private static string? Lifecycle(IdpEventEnvelope e) =>
        IdpEventTypes.GraphLifecycleEvent(e.Type)
        ?? JsonText.GetStringOrNull(e.Data, "lifecycleEvent") switch
        {
            "reauthorizationRequired" => "reauthorizationRequired",
            "subscriptionRemoved" => "subscriptionRemoved",
            "missed" => "missed",
            _ => null,
        };

    // Graph change notification: resourceData.id, or the id at the end of "resource" (e.g. "Users/{id}").
    private static string UserId(IdpEventEnvelope e)
    {
        if (e.Data.ValueKind == JsonValueKind.Object)
        {
            if (JsonText.TryGetProperty(e.Data, "resourceData", out var rd) && JsonText.GetStringOrNull(rd, "id") is { } id)
            {
                return id;
            }

            if (JsonText.GetStringOrNull(e.Data, "resource") is { } value)
            {
                var slash = value.LastIndexOf('/');
                if (slash >= 0 && slash < value.Length - 1)
                {
                    return value[(slash + 1)..].Trim('\'', '(', ')');
                }
            }
        }

        throw new MalformedEventException($"Microsoft Graph event {LogValue.Of(e.Id)} has no user id (resourceData.id).");
    }

    [LoggerMessage(EventId = 5005, Level = LogLevel.Warning, Message = "Microsoft Graph notification {Type} ({Id}) refused: its clientState is not Events:GraphClientState.")]
    private static partial void LogClientStateMismatch(ILogger logger, string type, string id);
}
