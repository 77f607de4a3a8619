using Microsoft.Extensions.Primitives;

namespace TokenService.Dpop;

/// <summary>
/// What a proof is checked against: the request's <c>DPoP</c> header values, its method, the URI the client was told
/// to use (htu), and the access token presented with it at a protected resource (for <c>ath</c>), if any.
/// <c>AlternateUri</c>: another URI of the same request that a proof may name instead (the development host's own
/// address, see DpopRequestReader); null in production.
/// </summary>
public readonly record struct DpopProofRequest(StringValues Proofs, string Method, string Uri, string? AccessToken = null, string? AlternateUri = null);

/// <summary>
/// Checks DPoP proofs (RFC 9449 §4.3). Free of the token service's own types, so that a resource server can apply the
/// same rules. Never throws for bad input; an unreachable replay cache throws the host's dependency-unavailable exception.
/// </summary>
public interface IDpopProofValidator
{
    /// <summary>The allowed proof algorithms (discovery's <c>dpop_signing_alg_values_supported</c>, the <c>algs</c> challenge parameter).</summary>
    IReadOnlyList<string> Algorithms { get; }

    /// <summary>
    /// Checks the proof; an absent header gives <see cref="DpopProofResult.Absent"/> (the caller decides whether one was
    /// required). A valid proof's <c>jti</c> is recorded, so the same proof is refused afterwards.
    /// </summary>
    ValueTask<DpopProofResult> ValidateAsync(DpopProofRequest request, CancellationToken cancellationToken);
}
