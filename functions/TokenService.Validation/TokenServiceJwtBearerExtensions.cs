using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace TokenService.Validation;

/// <summary>
/// The token service's session-status check as an extension of ASP.NET Core's JwtBearer handler:
/// <code>
/// services.AddAuthentication(JwtBearerDefaults.AuthenticationScheme)
///     .AddJwtBearer(o =>
///     {
///         o.Authority = "https://tokens.example.com";   // discovery and JWKS by the standard handler
///         o.Audience = "api://orders";
///         o.MapInboundClaims = false;                    // claims as the token names them: sub, client_id, scope, sid
///         o.TokenValidationParameters.ValidTypes = ["at+jwt"];               // RFC 9068 §4
///         o.TokenValidationParameters.ValidAlgorithms = ["RS256", "PS256", "ES256"];
///         o.TokenValidationParameters.ClockSkew = TimeSpan.FromSeconds(30);
///     })
///     .AddTokenServiceSessionCheck(o => { o.ClientId = "orders-api"; o.ClientSecret = "…"; });
/// </code>
/// </summary>
public static class TokenServiceJwtBearerExtensions
{
    /// <summary>Adds the session-status check to the <see cref="JwtBearerDefaults.AuthenticationScheme"/> scheme.</summary>
    public static AuthenticationBuilder AddTokenServiceSessionCheck(this AuthenticationBuilder builder, Action<SessionCheckOptions> configure) =>
        builder.AddTokenServiceSessionCheck(JwtBearerDefaults.AuthenticationScheme, configure);

    /// <summary>
    /// Adds the session-status check to the JwtBearer scheme <paramref name="scheme"/>: after the standard handler has
    /// validated a token, <c>OnTokenValidated</c> asks the token service's introspection endpoint whether its session is
    /// live and its jti not denied (cached per <see cref="SessionCheckOptions.StatusCacheDuration"/>). A revoked token is
    /// refused with 401 <c>invalid_token</c>; when its status cannot be learned and none is cached, or the service's
    /// metadata cannot be fetched, the request gets 503 with Retry-After (fail closed). Where the scheme leaves
    /// IdentityModel's defaults, the token service's profile is applied: <c>ValidTypes</c> at+jwt, <c>ValidAlgorithms</c>
    /// RS256/PS256/ES256 with an <c>AlgorithmValidator</c> binding the algorithm to the key, <c>ValidIssuer</c> exactly
    /// the Authority, lifetime on the scheme's <c>TimeProvider</c>; a token with a <c>crit</c> header is refused. A token
    /// whose <c>kid</c> the cached JWKS lacks is validated against keys fetched at once (at most one fetch per
    /// <see cref="SessionCheckOptions.UnknownKeyRefetchInterval"/>), not refused while the JWKS refreshes in the background.
    /// <c>JwtBearerOptions.EventsType</c> is refused (the hooks would never run).
    /// DPoP (RFC 9449 §7): <c>Authorization: DPoP &lt;token&gt;</c> is accepted with a <c>DPoP</c> proof of the key the
    /// token is bound to (<c>cnf.jkt</c>), checked with the token service's rules and this API's own <c>jti</c> replay
    /// cache; a DPoP-bound token sent as a bearer token is refused; challenges carry <c>WWW-Authenticate: DPoP algs=…</c>.
    /// Handlers the application set in <see cref="JwtBearerOptions.Events"/> run first.
    /// With <see cref="SessionCheckOptions.SharedSignals"/> <c>Delivery</c> Poll or Push, a hosted service keeps an
    /// OpenID Shared Signals stream at the token service: sessions its events revoke are refused at once, and while the
    /// stream is healthy a cached status is trusted until the token expires (docs/shared-signals.md, "The receiver").
    /// </summary>
    public static AuthenticationBuilder AddTokenServiceSessionCheck(this AuthenticationBuilder builder, string scheme, Action<SessionCheckOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrEmpty(scheme);
        ArgumentNullException.ThrowIfNull(configure);
        builder.Services.AddOptions<SessionCheckOptions>(scheme)
            .Configure(configure)
            .Validate(o => !string.IsNullOrEmpty(o.ClientId) && !string.IsNullOrEmpty(o.ClientSecret),
                "ClientId and ClientSecret (a resource_server client of the token service) are required for the session check.")
            .Validate(o => o.StatusCacheDuration >= TimeSpan.Zero && o.MaxStatusCacheEntries > 0 && o.RetryAfter > TimeSpan.Zero,
                "StatusCacheDuration must not be negative, MaxStatusCacheEntries and RetryAfter must be positive.")
            .Validate(o => o.UnknownKeyRefetchInterval >= TimeSpan.FromSeconds(1),
                "UnknownKeyRefetchInterval must be at least 1 second.")
            .Validate(o => o.DpopProofLifetime > TimeSpan.Zero && o.DpopProofLifetime <= TimeSpan.FromMinutes(10) && o.DpopClockSkew >= TimeSpan.Zero && o.DpopClockSkew <= TimeSpan.FromMinutes(5),
                "DpopProofLifetime must be positive and at most 10 minutes, DpopClockSkew between 0 and 5 minutes.")
            .Validate(o => o.PublicOrigin is null || (o.PublicOrigin.IsAbsoluteUri && o.PublicOrigin.Scheme is "https" or "http"),
                "PublicOrigin must be an absolute http(s) URL.")
            // RFC 9449 §4.3 item 9 compares htu with the URI the client used. Without PublicOrigin that URI is rebuilt from
            // the request's Host header, which the client chooses: a proof made for another API with the same path would
            // pass here. Only a developer's machine may rely on Host (DpopBinding logs a warning there). No host
            // environment registered (a bare service collection) counts as not Development.
            .Validate<IServiceProvider>((o, sp) => o.PublicOrigin is not null || sp.GetService<IHostEnvironment>()?.IsDevelopment() == true,
                "PublicOrigin (the scheme, host and port clients use to reach this API, e.g. https://orders.example.com) is required outside Development: "
                + "without it a DPoP proof's htu is checked against the request's Host header, which the client sets.")
            .Validate(o => o.SharedSignals.PollInterval >= TimeSpan.FromMilliseconds(100) && o.SharedSignals.VerificationInterval >= TimeSpan.FromSeconds(1)
                    && o.SharedSignals.RevokedSessionRetention > TimeSpan.Zero && !string.IsNullOrEmpty(o.SharedSignals.StreamDescription),
                "SharedSignals: PollInterval must be at least 100 ms, VerificationInterval at least 1 s, RevokedSessionRetention positive, StreamDescription set.")
            .Validate(o => o.SharedSignals.Delivery != SharedSignalsDelivery.Push
                    || (o.PublicOrigin is not null && o.SharedSignals.PushPath is ['/', ..] && !o.SharedSignals.PushPath.Contains('?', StringComparison.Ordinal) && !o.SharedSignals.PushPath.Contains('#', StringComparison.Ordinal)),
                "SharedSignals push delivery needs PublicOrigin (the stream's endpoint_url is PublicOrigin + PushPath) and a PushPath starting with '/'.")
            .ValidateOnStart();

        // One status cache, receiver state and receiver per scheme, shared by the JwtBearer events (PostConfigure) and the
        // hosted service that keeps the stream; with Delivery None the receiver does nothing and the cache is today's.
        builder.Services.AddKeyedSingleton(scheme, (sp, _) => new SharedSignalsState(sp.GetRequiredService<IOptionsMonitor<SessionCheckOptions>>().Get(scheme)));
        builder.Services.AddKeyedSingleton(scheme, (sp, _) => new SessionStatusChecker(
            sp.GetRequiredService<IOptionsMonitor<SessionCheckOptions>>().Get(scheme),
            sp.GetRequiredKeyedService<SharedSignalsState>(scheme),
            sp.GetRequiredService<ILoggerFactory>().CreateLogger("TokenService.Validation.SessionCheck")));
        builder.Services.AddKeyedSingleton(scheme, (sp, _) => new SharedSignalsReceiver(
            scheme,
            sp.GetRequiredService<IOptionsMonitor<SessionCheckOptions>>().Get(scheme),
            sp.GetRequiredKeyedService<SharedSignalsState>(scheme),
            sp.GetRequiredService<IOptionsMonitor<JwtBearerOptions>>(),
            sp.GetRequiredService<ILoggerFactory>().CreateLogger("TokenService.Validation.SharedSignals")));
        builder.Services.AddSingleton<IHostedService>(sp => sp.GetRequiredKeyedService<SharedSignalsReceiver>(scheme));
        builder.Services.AddSingleton<IStartupFilter>(sp => new SharedSignalsPushStartupFilter(
            scheme, sp.GetRequiredService<IOptionsMonitor<SessionCheckOptions>>(), () => sp.GetRequiredKeyedService<SharedSignalsReceiver>(scheme)));
        builder.Services.AddSingleton<IPostConfigureOptions<JwtBearerOptions>>(sp => new SessionCheckPostConfigure(
            scheme, sp.GetRequiredService<IOptionsMonitor<SessionCheckOptions>>(), sp.GetRequiredService<ILoggerFactory>(), () => sp.GetRequiredKeyedService<SessionStatusChecker>(scheme)));
        return builder;
    }
}
