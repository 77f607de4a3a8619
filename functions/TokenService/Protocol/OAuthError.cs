namespace TokenService.Protocol;

/// <summary>An RFC 6749 §5.2 error: the <c>error</c> code (one of <see cref="OAuthErrors"/>) and its <c>error_description</c>.</summary>
public readonly record struct OAuthError(string Code, string Description);
