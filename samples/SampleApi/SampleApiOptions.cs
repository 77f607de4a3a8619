namespace SampleApi;

/// <summary>Configuration section <c>SampleApi</c> (<c>SampleApi__Authority</c>, … as environment variables).</summary>
public sealed class SampleApiOptions
{
    public const string SectionName = "SampleApi";

    /// <summary>The token service's issuer (<c>TokenService__Issuer</c>).</summary>
    public string? Authority { get; set; }

    /// <summary>This API's audience; the SPA asks for it with <c>audience=</c>.</summary>
    public string? Audience { get; set; }

    /// <summary>This API's <c>resource_server</c> client, for introspection (session state and the jti deny list).</summary>
    public string? ClientId { get; set; }

    public string? ClientSecret { get; set; }

    /// <summary>
    /// The scheme, host and port clients use to reach this API (<c>SampleApi__PublicOrigin</c>), against which DPoP
    /// proofs' <c>htu</c> is checked. Required outside Development; in Development the request's Host is used.
    /// </summary>
    public Uri? PublicOrigin { get; set; }

    /// <summary>
    /// The Shared Signals receiver (<c>SampleApi__SharedSignals__Delivery</c>: none, poll or push; docs/shared-signals.md,
    /// "The receiver"). None by default, in Development too: the development token service runs without its transmitter
    /// unless <c>SharedSignals__Enabled</c> is set, and a receiver pointed at it would only retry its set-up and log.
    /// </summary>
    public SampleApiSharedSignals SharedSignals { get; set; } = new();

    /// <summary>Origins of the single-page apps that call this API from a browser (CORS).</summary>
    public List<string> AllowedOrigins { get; set; } = [];

    /// <summary>
    /// The development host's defaults (README: the token service on http://127.0.0.1:7071 with its development
    /// clients, the SPA on port 5173), used in Development for every setting left empty. The secret is the
    /// development client's published one; no other environment has defaults.
    /// </summary>
    public void ApplyDevelopmentDefaults()
    {
        Authority ??= "http://127.0.0.1:7071";
        Audience ??= "api://dev";
        ClientId ??= "dev-api";
        ClientSecret ??= "dev-api-secret";
        if (AllowedOrigins.Count == 0)
        {
            AllowedOrigins.AddRange(["http://localhost:5173", "http://127.0.0.1:5173"]);
        }
    }
}

/// <summary>Configuration section <c>SampleApi:SharedSignals</c>.</summary>
public sealed class SampleApiSharedSignals
{
    /// <summary>none (introspection and bounded staleness only), poll (RFC 8936) or push (RFC 8935, needs PublicOrigin).</summary>
    public TokenService.Validation.SharedSignalsDelivery Delivery { get; set; } = TokenService.Validation.SharedSignalsDelivery.None;

    /// <summary><c>SampleApi__SharedSignals__PollInterval</c>; the library's default (2 s) when empty.</summary>
    public TimeSpan? PollInterval { get; set; }

    /// <summary><c>SampleApi__SharedSignals__VerificationInterval</c>; the library's default (15 s) when empty.</summary>
    public TimeSpan? VerificationInterval { get; set; }

    /// <summary>
    /// <c>SampleApi__SharedSignals__StreamDescription</c>: the stream this instance adopts or creates; the library's
    /// default (the machine name) when empty. Each instance needs its own.
    /// </summary>
    public string? StreamDescription { get; set; }
}
