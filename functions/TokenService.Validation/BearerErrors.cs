namespace TokenService.Validation;

/// <summary>
/// The error code this library puts in a <c>Bearer</c> or <c>DPoP</c> challenge: RFC 6750 §3.1 <c>invalid_token</c>,
/// which RFC 9449 §7.1 reuses for a failed key binding. Written here, not taken from the core's <c>OAuthErrors</c>:
/// this library depends on nothing of the core.
/// </summary>
internal static class BearerErrors
{
    public const string InvalidToken = "invalid_token";
}
