namespace TokenService.Validation;

/// <summary>
/// The token service's session-status check for a JwtBearer scheme (<see cref="TokenServiceJwtBearerExtensions.AddTokenServiceSessionCheck(Microsoft.AspNetCore.Authentication.AuthenticationBuilder, Action{SessionCheckOptions})"/>):
/// after JwtBearer has validated a token (signature from the service's JWKS, iss, aud, typ, exp), its session state and
/// the jti deny list are learned by introspection (RFC 7662) and reused for a bounded time.
/// </summary>
public sealed class SessionCheckOptions
{
    /// <summary>This API's <c>resource_server</c> client id and secret, for introspection (HTTP Basic, RFC 6749 §2.3.1).</summary>
    public string? ClientId { get; set; }

    public string? ClientSecret { get; set; }

    /// <summary>
    /// Bounded staleness of revocation (session ended, jti denied): a token's status learned by introspection is
    /// reused for at most this long (default 30 s; never beyond the token's expiry). Zero checks every request.
    /// </summary>
    public TimeSpan StatusCacheDuration { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Upper bound of the status cache's entries.</summary>
    public int MaxStatusCacheEntries { get; set; } = 100_000;

    /// <summary>The introspection endpoint; null reads <c>introspection_endpoint</c> from the scheme's discovery document.</summary>
    public Uri? IntrospectionEndpoint { get; set; }

    /// <summary>How long a client is told to wait (Retry-After) when the status cannot be learned (503).</summary>
    public TimeSpan RetryAfter { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// A token whose <c>kid</c> is not in the cached JWKS (a key published without notice: an immediate rotation, or a
    /// revoked signing key) makes the API fetch the token service's keys at once and validate the token with them. That
    /// fetch is reused for this long (default 30 s, at least 1 s), so tokens with made-up kids cost at most one fetch
    /// per interval.
    /// </summary>
    public TimeSpan UnknownKeyRefetchInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// DPoP (RFC 9449 §7): how long after its <c>iat</c> a proof is accepted; its <c>jti</c> is remembered that long by
    /// this API (its own replay cache, one per process).
    /// </summary>
    public TimeSpan DpopProofLifetime { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>DPoP: how far in the future a proof's <c>iat</c> may be.</summary>
    public TimeSpan DpopClockSkew { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// DPoP: the scheme, host and port clients use to reach this API (the proof's <c>htu</c> names the URI the client
    /// used, RFC 9449 §4.3 item 9). Required outside Development (the host refuses to start): the request's <c>Host</c>
    /// header is chosen by the client, so checking <c>htu</c> against it would accept a proof made for another API with
    /// the same path. Null in Development only: the request's own scheme and Host, with a warning logged once.
    /// </summary>
    public Uri? PublicOrigin { get; set; }

    /// <summary>
    /// DPoP: where proof <c>jti</c>s are remembered (RFC 9449 §11.1). Null: in memory, one cache per process; an API
    /// with several instances that must catch a proof replayed to another instance sets a shared one (for instance on
    /// its own distributed store). A cache that cannot answer fails the request closed (503).
    /// </summary>
    public TokenService.Dpop.IDpopReplayCache? DpopReplayCache { get; set; }

    /// <summary>
    /// The Shared Signals receiver (docs/shared-signals.md, "The receiver"): <c>Delivery</c> None (default), Poll or Push.
    /// </summary>
    public SharedSignalsReceiverOptions SharedSignals { get; } = new();
}
