using TokenService.Clients;

namespace TokenService.TokenRequests;

/// <summary>A token request whose parameters passed <see cref="TokenRequestValidator"/>, for an authenticated client.</summary>
public abstract record ValidatedTokenRequest(RegisteredClient Client);

/// <summary>
/// RFC 8693 token exchange: <see cref="SubjectToken"/> is an ID token not yet checked (that is the exchange's first
/// step); <see cref="Scope"/> and <see cref="Audiences"/> are what the new session is granted.
/// </summary>
public sealed record ValidatedExchangeRequest(RegisteredClient Client, string SubjectToken, string Scope, IReadOnlyList<string> Audiences)
    : ValidatedTokenRequest(Client);

/// <summary>
/// RFC 6749 §6 refresh: the presented token (from the form, or a spa's cookie), the scope asked for as sent (null: the
/// session's; narrowing is the session's check) and the audiences asked for (empty: the default, <see cref="AudiencePolicy.ForRefresh"/>).
/// </summary>
public sealed record ValidatedRefreshRequest(RegisteredClient Client, string RefreshToken, string? Scope, IReadOnlyList<string> RequestedAudiences)
    : ValidatedTokenRequest(Client);
