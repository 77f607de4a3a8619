namespace TokenService.Dpop;

/// <summary>
/// Configuration section <c>Dpop</c>: how DPoP proofs (RFC 9449) are checked. The rules do not depend on the token
/// service's sessions, so a resource server can check proofs with the same options.
/// </summary>
public sealed class DpopOptions
{
    public const string SectionName = "Dpop";

    /// <summary>
    /// How long after its <c>iat</c> a proof is accepted (RFC 9449 §11.1: "a relatively brief period on the order of
    /// seconds or minutes"); its <c>jti</c> is remembered that long.
    /// </summary>
    public TimeSpan ProofLifetime { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>How far in the future a proof's <c>iat</c> may be (client clocks run fast; RFC 9449 §11.1 note).</summary>
    public TimeSpan ClockSkew { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Require a server-provided nonce in every proof (RFC 9449 §8 and §9): a proof without one, or with a stale one,
    /// is answered <c>use_dpop_nonce</c> with a fresh <c>DPoP-Nonce</c>. Limits proofs pre-generated for later use (§11.2).
    /// </summary>
    public bool RequireNonce { get; set; }

    /// <summary>How long a nonce stays acceptable after it was issued.</summary>
    public TimeSpan NonceLifetime { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// Secret the nonces are derived from (at least 32 characters). Every instance of a scaled-out app must have the
    /// same one so that a nonce issued by one instance is accepted by another. Absent: a random secret per process
    /// (one instance only; required outside Development when <see cref="RequireNonce"/> is on).
    /// </summary>
    public string? NonceSecret { get; set; }
}
