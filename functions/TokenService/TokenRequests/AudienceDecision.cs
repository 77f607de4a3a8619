using System.Diagnostics.CodeAnalysis;

namespace TokenService.TokenRequests;

/// <summary>What <see cref="AudiencePolicy"/> decided: the audiences, or why the request is refused (<see cref="Error"/>, a description).</summary>
public readonly record struct AudienceDecision(IReadOnlyList<string> Audiences, string? Error)
{
    [MemberNotNullWhen(false, nameof(Error))]
    public bool IsAllowed => Error is null;

    public static AudienceDecision Allow(IReadOnlyList<string> audiences) => new(audiences, null);

    public static AudienceDecision Refuse(string error) => new([], error);
}
