using System.Diagnostics.CodeAnalysis;
using TokenService.Protocol;

namespace TokenService.TokenRequests;

/// <summary>What <see cref="TokenRequestValidator"/> found: a validated request, or the OAuth error to answer with.</summary>
public sealed class TokenRequestValidationResult
{
    private TokenRequestValidationResult(ValidatedTokenRequest? request, OAuthError? error)
    {
        Request = request;
        Error = error;
    }

    public ValidatedTokenRequest? Request { get; }

    public OAuthError? Error { get; }

    [MemberNotNullWhen(false, nameof(Request))]
    [MemberNotNullWhen(true, nameof(Error))]
    public bool IsError => Error is not null;

    public static TokenRequestValidationResult Valid(ValidatedTokenRequest request) => new(request, null);

    public static TokenRequestValidationResult Invalid(string error, string description) => new(null, new OAuthError(error, description));
}
