using Microsoft.Extensions.Primitives;
using TokenService.Clients;

namespace TokenService.TokenRequests;

/// <summary>
/// Which audiences a token request gets: RFC 8693 §2.1 <c>audience</c> and RFC 8707 <c>resource</c> are one list of
/// targets here. Pure functions of the client, the request's parameters and the issuer, with nothing to look up.
/// The token service's own audience (its issuer, which the session endpoints require) is special: a client gets it only
/// when it is listed in the client's AllowedAudiences and only on explicit request. A session may then hold it besides
/// APIs, but no single token carries both (<see cref="ForToken"/>).
/// </summary>
public static class AudiencePolicy
{
    /// <summary>
    /// The <c>audience</c> values, then the <c>resource</c> values, each once in the order given; an empty value is
    /// refused (with the name of its parameter). None given: an empty list.
    /// </summary>
    public static AudienceDecision ReadRequested(StringValues audience, StringValues resource)
    {
        if (audience.Count == 0 && resource.Count == 0)
        {
            return AudienceDecision.Allow([]); // most requests name no target
        }

        var values = new List<string>();
        foreach (var (name, given) in (ReadOnlySpan<(string, StringValues)>)[("audience", audience), ("resource", resource)])
        {
            foreach (var value in given)
            {
                if (string.IsNullOrEmpty(value))
                {
                    return AudienceDecision.Refuse($"An empty {name} parameter is not allowed.");
                }

                if (!values.Contains(value))
                {
                    values.Add(value);
                }
            }
        }

        return AudienceDecision.Allow(values);
    }

    /// <summary>
    /// The audiences a token exchange grants the new session. Nothing requested: every API the client may call, never
    /// the token service itself (the client's own id when it may call none). Otherwise each requested value must be
    /// allowed for the client (RFC 8693 §2.2.2: else invalid_target), and the session gets exactly those.
    /// </summary>
    public static AudienceDecision ForExchange(RegisteredClient client, IReadOnlyList<string> requested, string issuer)
    {
        if (requested.Count == 0)
        {
            var apis = client.AllowedAudiences.Where(a => a != issuer).ToList();
            return AudienceDecision.Allow(apis.Count > 0 ? apis : [client.ClientId]);
        }

        return requested.Any(a => !client.AllowedAudiences.Contains(a))
            ? AudienceDecision.Refuse("The requested audience is not allowed for this client.")
            : AudienceDecision.Allow(requested);
    }

    /// <summary>
    /// The audiences of one access token of a session. A session may be granted the token service's own audience
    /// (its issuer) besides APIs, but no single token carries both: a token for both an API and the session
    /// endpoints would let that API list and end the user's sessions (RFC 9700 §2.3, RFC 8725 §3.9). By default a
    /// token is for the APIs; a refresh asks for the issuer alone (RFC 8707 §2.2) to get a token for /sessions.
    /// </summary>
    public static IReadOnlyList<string> ForToken(IReadOnlyList<string> granted, string issuer) =>
        granted.Count > 1 && granted.Contains(issuer) ? granted.Where(a => a != issuer).ToList() : granted;

    /// <summary>
    /// The audiences of the access token a refresh issues (RFC 8707 §2.2: a subset of the session's). Nothing
    /// requested: <see cref="ForToken"/> of the session's. Otherwise every requested value must have been granted to
    /// the session, and the issuer only alone.
    /// </summary>
    public static AudienceDecision ForRefresh(IReadOnlyList<string> granted, IReadOnlyList<string> requested, string issuer)
    {
        if (requested.Count == 0)
        {
            return AudienceDecision.Allow(ForToken(granted, issuer));
        }

        if (requested.Any(a => !granted.Contains(a)))
        {
            return AudienceDecision.Refuse("The requested audience was not granted to this session.");
        }

        return requested.Count > 1 && requested.Contains(issuer)
            ? AudienceDecision.Refuse("A token for the token service's own endpoints (audience = its issuer) must be requested alone.")
            : AudienceDecision.Allow(requested);
    }
}
