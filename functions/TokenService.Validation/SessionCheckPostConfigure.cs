using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TokenService.Jose;

namespace TokenService.Validation;

/// <summary>
/// Fills in the token service's profile where one JwtBearer scheme leaves IdentityModel's defaults, and wraps the
/// scheme's events in <see cref="SessionCheckEvents"/> (the DPoP binding, the session check, the fresh-key validation).
/// </summary>
internal sealed class SessionCheckPostConfigure(string scheme, IOptionsMonitor<SessionCheckOptions> checks, ILoggerFactory loggers, Func<SessionStatusChecker> checker)
    : IPostConfigureOptions<JwtBearerOptions>
{
    // RFC 9068 §4: "at+jwt"; RFC 7515 §4.1.9 allows the "application/" prefix.
    private static readonly string[] Types = ["at+jwt", "application/at+jwt"];

    public void PostConfigure(string? name, JwtBearerOptions options)
    {
        if (!string.Equals(name, scheme, StringComparison.Ordinal))
        {
            return;
        }

        // With EventsType, JwtBearer takes its events from DI and never runs the ones hooked here: the session check would
        // be skipped without a word. Refused at start-up instead.
        if (options.EventsType is not null)
        {
            throw new InvalidOperationException(
                $"AddTokenServiceSessionCheck hooks JwtBearerOptions.Events of scheme '{scheme}'; JwtBearerOptions.EventsType is not supported with it.");
        }

        var check = checks.Get(scheme);
        var time = options.TimeProvider ?? TimeProvider.System;
        ApplyProfile(options.TokenValidationParameters, options.Authority, time);
        options.Events = new SessionCheckEvents(
            options.Events ?? new JwtBearerEvents(),
            check,
            checker(),
            new DpopBinding(check, time, loggers),
            new FreshKeyValidation(new SigningKeyRefetcher(time, check.UnknownKeyRefetchInterval, check.RetryAfter)));
    }

    private static void ApplyProfile(Microsoft.IdentityModel.Tokens.TokenValidationParameters parameters, string? authority, TimeProvider time)
    {
        if (parameters.ValidTypes is null || !parameters.ValidTypes.Any())
        {
            parameters.ValidTypes = Types;
        }

        // The algorithms the token service signs with (Keys__Algorithm, docs/api.md "Configuration"); never "none" or HMAC (RFC 8725 §3.1, §3.2).
        parameters.ValidAlgorithms ??= JwsAlgorithms.Signing;
        if (parameters.ValidIssuer is null && parameters.ValidIssuers is null && !string.IsNullOrEmpty(authority))
        {
            // RFC 9068 §4 / RFC 8414 §3.3: iss is exactly the token service's issuer, not whatever the metadata says.
            parameters.ValidIssuer = authority;
        }

        if (parameters.AlgorithmValidator is null)
        {
            // docs/api.md, "Access token" / RFC 8725 §3.1: alg from the allow-list and bound to the key. ValidAlgorithms alone does not
            // bind it; the delegate replaces it, so it checks the allow-list too.
            parameters.AlgorithmValidator = (algorithm, key, _, p) => (p.ValidAlgorithms ?? JwsAlgorithms.Signing).Contains(algorithm, StringComparer.Ordinal) && JwsAlgorithms.KeyAllows(key, algorithm);
        }

        // Lifetime on the scheme's TimeProvider, so that a test clock (or an API's own) rules exp and nbf too.
        parameters.LifetimeValidator ??= JwtLifetime.On(time);
    }
}
