using TokenService.Sessions;
using TokenService.Tokens;

namespace TokenService.Tests.Infrastructure;

/// <summary>What the session service's tests share: an access-token factory that signs nothing, and a plain stored record.</summary>
internal static class TestSessions
{
    /// <summary>An <see cref="AccessTokenFactory"/> whose token is a placeholder with a fresh jti (no key involved).</summary>
    public static ValueTask<IssuedAccessToken> IssueAsync(SessionRecord session, string scope, CancellationToken cancellationToken) =>
        ValueTask.FromResult(new IssuedAccessToken("at", Guid.NewGuid().ToString("N"), session.IdleExpiresAt, 900, scope));

    /// <summary>A live session of <paramref name="user"/> for client "web", created at <paramref name="now"/>.</summary>
    public static SessionRecord Stored(string user, DateTimeOffset now) => new()
    {
        SessionId = SessionIds.NewSessionId(user), UserId = user, Subject = user, ClientId = "web", Scope = "a", Audiences = ["api://orders"],
        CreatedAt = now, LastActivityAt = now, IdleExpiresAt = now.AddDays(1), AbsoluteExpiresAt = now.AddDays(7),
        RefreshTokenHash = "h", RefreshTokenExpiresAt = now.AddDays(1), WriteId = "w", PurgeAt = now.AddDays(1).AddMinutes(15),
    };
}
