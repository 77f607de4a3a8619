using System.Text.Json;
using TokenService.Jwt;

namespace TokenService.Events;

/// <summary>
/// Auth0 log events through the Event Grid partner topic: type <c>auth0.logs.&lt;code&gt;</c>, or a source naming auth0,
/// with data (or data.data) being the log entry. The log codes that end sessions are <see cref="IdpEventTypes.Auth0Reason"/>'s;
/// other codes are acknowledged without action.
/// </summary>
public sealed class Auth0IdpEventTranslator : IIdpEventTranslator
{
    public ValueTask<IdpEventDecision?> TranslateAsync(IdpEventEnvelope e, CancellationToken cancellationToken) => ValueTask.FromResult(Translate(e));

    private static IdpEventDecision? Translate(IdpEventEnvelope e)
    {
        if (Code(e) is not { } code)
        {
            return null;
        }

        if (IdpEventTypes.Auth0Reason(code) is not { } reason)
        {
            return IdpEventDecision.Ignore(e, e.Time, $"Auth0 log type '{code}' does not end sessions");
        }

        var userId = JsonText.GetStringOrNull(Log(e), "user_id");
        return IdpEventDecision.Revoke(e, userId ?? throw new MalformedEventException("An Auth0 event has no user_id."), reason, e.Time);
    }

    // The log entry's "type" names the code; else the last segment of the event type does.
    private static string? Code(IdpEventEnvelope e)
    {
        if (e.Type.StartsWith("auth0.", StringComparison.OrdinalIgnoreCase) || (e.Source?.Contains("auth0", StringComparison.OrdinalIgnoreCase) ?? false))
        {
            if (JsonText.GetStringOrNull(Log(e), "type") is { } type)
            {
                return type;
            }

            var dot = e.Type.LastIndexOf('.');
            return dot >= 0 ? e.Type[(dot + 1)..] : null;
        }

        return null;
    }

    private static JsonElement Log(IdpEventEnvelope e) =>
        JsonText.TryGetProperty(e.Data, "data", out var inner) && inner.ValueKind == JsonValueKind.Object ? inner : e.Data;
}
