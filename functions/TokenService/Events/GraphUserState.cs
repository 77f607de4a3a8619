namespace TokenService.Events;

/// <summary>What Microsoft Graph says about a user named by a change notification.</summary>
public enum GraphUserState
{
    /// <summary><c>accountEnabled</c> is true.</summary>
    Enabled,

    /// <summary><c>accountEnabled</c> is false.</summary>
    Disabled,

    /// <summary>
    /// Graph answers 404: the user is deleted. A default deletion in Entra ID is a soft delete, announced as
    /// <c>Microsoft.Graph.UserUpdated</c>; from then on <c>GET /users/{id}</c> answers 404.
    /// </summary>
    NotFound,

    /// <summary>The user exists but Graph did not say whether the account is enabled.</summary>
    Unknown,
}
