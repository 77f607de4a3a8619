using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Microsoft.Net.Http.Headers;
using TokenService.Jose;

namespace TokenService.Validation;

/// <summary>A validated token whose session ended or whose jti is denied at the token service.</summary>
public sealed class TokenRevokedException(string message) : SecurityTokenException(message)
{
    public TokenRevokedException()
        : this("The token has been revoked.")
    {
    }

    public TokenRevokedException(string message, Exception innerException)
        : this(message + " " + innerException.Message)
    {
    }
}

/// <summary>The token's status (or the token service's metadata) cannot be learned right now: fail closed with 503.</summary>
public sealed class TokenStatusUnavailableException : Exception
{
    public TokenStatusUnavailableException()
        : this("The token's status cannot be learned right now.")
    {
    }

    public TokenStatusUnavailableException(string message)
        : base(message)
    {
    }

    public TokenStatusUnavailableException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>Hooks the session check into one JwtBearer scheme's events and fills in the token service's profile.</summary>
internal sealed class SessionCheckPostConfigure(string scheme, IOptionsMonitor<SessionCheckOptions> checks, ILoggerFactory loggers)
    : IPostConfigureOptions<JwtBearerOptions>
{
    // RFC 9068 §4: "at+jwt"; RFC 7515 §4.1.9 allows the "application/" prefix.
    private static readonly string[] Types = ["at+jwt", "application/at+jwt"];

    private static async Task<bool> MetadataAvailableAsync(JwtBearerOptions options, CancellationToken cancellationToken)
    {
        if (options.ConfigurationManager is not { } manager)
        {
            return true;
        }

        try
        {
            await manager.GetConfigurationAsync(cancellationToken);
            return true;
        }
        catch (Exception ex) when (ex is InvalidOperationException or HttpRequestException or IOException or OperationCanceledException)
        {
            return false;
        }
    }

    // Where OnMessageReceived leaves the token JwtBearer will validate, for a second validation with fresh keys.
    private static readonly object RawTokenItem = new();

    /// <summary>The token of this request: as an event or the DPoP scheme set it, else JwtBearer's own "Bearer" reading.</summary>
    private static string? RawToken(HttpContext context)
    {
        if (context.Items.TryGetValue(RawTokenItem, out var stored) && stored is string token)
        {
            return token;
        }

        var header = context.Request.Headers.Authorization;
        return header.Count == 1 && header[0] is { Length: > 7 } value && value.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)
            && value[7..].Trim() is { Length: > 0 } bearer ? bearer : null;
    }

    /// <summary>
    /// The token's kid is not in the scheme's cached JWKS: validates it again, as JwtBearer does, with the keys of a
    /// fetch made now (<see cref="SigningKeyRefetcher"/>), and on success runs <c>OnTokenValidated</c> (the application's
    /// handler, the DPoP binding and the session check) before the request is authenticated. Keys that cannot be fetched
    /// fail it closed (503); a kid the fresh keys lack either keeps JwtBearer's 401.
    /// </summary>
    private static async Task ValidateWithFreshKeysAsync(AuthenticationFailedContext context, string token, SigningKeyRefetcher refetcher)
    {
        var options = context.Options;
        var (keys, issuer) = await refetcher.GetAsync(options, context.HttpContext.RequestAborted);
        if (keys is null)
        {
            context.Fail(new TokenStatusUnavailableException("The token service's keys cannot be fetched.", context.Exception));
            return;
        }

        // As JwtBearer builds its parameters from a configuration: the scheme's own keys and issuers plus the metadata's.
        var parameters = options.TokenValidationParameters.Clone();
        parameters.ConfigurationManager = null;
        parameters.IssuerSigningKeys = parameters.IssuerSigningKeys is { } own ? [.. own, .. keys] : keys;
        if (!string.IsNullOrEmpty(issuer))
        {
            parameters.ValidIssuers = parameters.ValidIssuers is { } issuers ? [.. issuers, issuer] : [issuer];
        }

        TokenValidationResult? result = null;
        foreach (var handler in options.TokenHandlers)
        {
            result = await handler.ValidateTokenAsync(token, parameters);
            if (result.IsValid)
            {
                break;
            }
        }

        if (result is not { IsValid: true })
        {
            if (result?.Exception is { } failure and not SecurityTokenSignatureKeyNotFoundException)
            {
                context.Fail(failure);
            }

            return;
        }

        var validated = new TokenValidatedContext(context.HttpContext, context.Scheme, options)
        {
            Principal = new System.Security.Claims.ClaimsPrincipal(result.ClaimsIdentity),
            SecurityToken = result.SecurityToken,
        };
        if (result.SecurityToken.ValidTo != DateTime.MinValue)
        {
            validated.Properties.ExpiresUtc = new DateTimeOffset(DateTime.SpecifyKind(result.SecurityToken.ValidTo, DateTimeKind.Utc));
        }

        if (result.SecurityToken.ValidFrom != DateTime.MinValue)
        {
            validated.Properties.IssuedUtc = new DateTimeOffset(DateTime.SpecifyKind(result.SecurityToken.ValidFrom, DateTimeKind.Utc));
        }

        await options.Events.TokenValidated(validated);
        if (validated.Result is { } outcome)
        {
            if (outcome.Succeeded)
            {
                context.Principal = outcome.Principal;
                context.Properties = outcome.Properties;
                context.Success();
            }
            else if (outcome.Failure is { } refused)
            {
                context.Fail(refused);
            }
            else
            {
                context.NoResult();
            }

            return;
        }

        if (options.SaveToken)
        {
            validated.Properties.StoreTokens([new AuthenticationToken { Name = "access_token", Value = token }]);
        }

        context.Principal = validated.Principal;
        context.Properties = validated.Properties;
        context.Success();
    }

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
        var checker = new SessionStatusChecker(check, loggers.CreateLogger("TokenService.Validation.SessionCheck"));
        var parameters = options.TokenValidationParameters;
        if (parameters.ValidTypes is null || !parameters.ValidTypes.Any())
        {
            parameters.ValidTypes = Types;
        }

        // The algorithms the token service signs with (CONTRACT §1 Keys__Algorithm); never "none" or HMAC (RFC 8725 §3.1, §3.2).
        parameters.ValidAlgorithms ??= JwsAlgorithms.Signing;
        if (parameters.ValidIssuer is null && parameters.ValidIssuers is null && !string.IsNullOrEmpty(options.Authority))
        {
            // RFC 9068 §4 / RFC 8414 §3.3: iss is exactly the token service's issuer, not whatever the metadata says.
            parameters.ValidIssuer = options.Authority;
        }

        if (parameters.AlgorithmValidator is null)
        {
            // CONTRACT §3 / RFC 8725 §3.1: alg from the allow-list and bound to the key. ValidAlgorithms alone does not
            // bind it; the delegate replaces it, so it checks the allow-list too.
            parameters.AlgorithmValidator = (algorithm, key, _, p) => (p.ValidAlgorithms ?? JwsAlgorithms.Signing).Contains(algorithm, StringComparer.Ordinal) && JwsAlgorithms.KeyAllows(key, algorithm);
        }

        if (parameters.LifetimeValidator is null)
        {
            parameters.LifetimeValidator = JwtLifetime.On(options.TimeProvider ?? TimeProvider.System);
        }

        var dpop = new DpopBinding(check, options.TimeProvider ?? TimeProvider.System, loggers);
        var keys = new SigningKeyRefetcher(options.TimeProvider ?? TimeProvider.System, check.UnknownKeyRefetchInterval, check.RetryAfter);
        var events = options.Events ??= new JwtBearerEvents();
        var messageReceived = events.OnMessageReceived;
        events.OnMessageReceived = async context =>
        {
            await messageReceived(context);
            DpopBinding.ReadDpopScheme(context);
            if (context.Token is { } token)
            {
                context.HttpContext.Items[RawTokenItem] = token;
            }
        };

        var tokenValidated = events.OnTokenValidated;
        events.OnTokenValidated = async context =>
        {
            await tokenValidated(context);
            if (context.Result is not null)
            {
                return;
            }

            if (context.SecurityToken is not JsonWebToken token)
            {
                context.Fail(new TokenRevokedException("The token is not a JWS the session check can read."));
                return;
            }

            // RFC 7515 §7.1: each segment is strict base64url. IdentityModel decodes leniently (padding, whitespace), so two
            // texts of one token would both pass; the token service and the DPoP checker refuse all but the canonical one.
            if (!Base64UrlEncoding.IsStrictCompactJws(token.EncodedToken))
            {
                context.Fail(new SecurityTokenMalformedException("The token is not strict base64url."));
                return;
            }

            // RFC 7515 §4.1.11: a recipient MUST refuse a JWS whose "crit" names extensions it does not understand, and
            // we understand none; IdentityModel does not look at "crit". (The token service never writes it.)
            if (token.TryGetHeaderValue<object>("crit", out _))
            {
                context.Fail(new SecurityTokenMalformedException("The token names critical header extensions that are not supported."));
                return;
            }

            // The binding before the session: a copied token gets no answer about its session.
            if (await dpop.CheckAsync(context.HttpContext, token) is { } binding)
            {
                context.Fail(binding);
                return;
            }

            switch (await checker.CheckAsync(token, context.Options, context.HttpContext.RequestAborted))
            {
                case SessionStatus.Revoked:
                    context.Fail(new TokenRevokedException());
                    break;
                case SessionStatus.Unavailable:
                    context.Fail(new TokenStatusUnavailableException());
                    break;
            }
        };

        var authenticationFailed = events.OnAuthenticationFailed;
        events.OnAuthenticationFailed = async context =>
        {
            await authenticationFailed(context);
            if (context.Result is not null)
            {
                return;
            }

            // "No key for this kid" is also what a scheme that never reached the JWKS reports; other exceptions than
            // SecurityTokenException JwtBearer would rethrow (a 500). Either the discovery document or JWKS cannot be
            // fetched: the service is unreachable, so the request fails closed with 503; or the token's content made a
            // reader throw (text that is not Unicode, for instance): a bad token, 401 invalid_token.
            if (context.Exception is SecurityTokenSignatureKeyNotFoundException)
            {
                if (context.Options.ConfigurationManager is not null && !string.IsNullOrEmpty(context.Options.MetadataAddress)
                    && RawToken(context.HttpContext) is { } token)
                {
                    await ValidateWithFreshKeysAsync(context, token, keys);
                }
                else if (!await MetadataAvailableAsync(context.Options, context.HttpContext.RequestAborted))
                {
                    context.Fail(new TokenStatusUnavailableException("The token service's keys cannot be fetched.", context.Exception));
                }
            }
            else if (context.Exception is not SecurityTokenException)
            {
                context.Fail(await MetadataAvailableAsync(context.Options, context.HttpContext.RequestAborted)
                    ? new SecurityTokenMalformedException("The token is not a valid access token.", context.Exception)
                    : new TokenStatusUnavailableException("The token service's metadata cannot be fetched.", context.Exception));
            }
        };

        var challenge = events.OnChallenge;
        events.OnChallenge = async context =>
        {
            await challenge(context);
            if (context.Handled)
            {
                return;
            }

            switch (context.AuthenticateFailure)
            {
                case DpopBindingException binding:
                    // RFC 9449 §7.1: the DPoP challenge with the error; its description is a fixed text (RFC 6750 §3).
                    context.HandleResponse();
                    context.Response.StatusCode = StatusCodes.Status401Unauthorized;
                    context.Response.Headers.WWWAuthenticate = dpop.Challenge(binding.Error, binding.Message);
                    return;
                case TokenStatusUnavailableException unavailable:
                    context.HandleResponse();
                    context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
                    context.Response.Headers.RetryAfter = ((int)Math.Ceiling(check.RetryAfter.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
                    context.Response.Headers.WWWAuthenticate = $"Bearer error=\"invalid_token\", error_description=\"{unavailable.Message}\"";
                    return;
                case not null when DpopBinding.UsedDpop(context.HttpContext):
                    // Any other failure of a DPoP request (expired, wrong audience, revoked): invalid_token in the DPoP challenge.
                    context.HandleResponse();
                    context.Response.StatusCode = StatusCodes.Status401Unauthorized;
                    context.Response.Headers.WWWAuthenticate = dpop.Challenge(BearerErrors.InvalidToken, "The access token is not valid");
                    return;
                case TokenRevokedException revoked:
                    // RFC 6750 §3.1: invalid_token with a human-readable description.
                    context.ErrorDescription = revoked.Message;
                    break;
            }

            // RFC 9449 §7.2: both schemes are offered. JwtBearer writes its Bearer challenge (with the error, if any)
            // after this event; the DPoP one follows it.
            var response = context.Response;
            response.OnStarting(() =>
            {
                if (response.StatusCode == StatusCodes.Status401Unauthorized)
                {
                    response.Headers.Append(HeaderNames.WWWAuthenticate, dpop.Challenge());
                }

                return Task.CompletedTask;
            });
        };
    }
}
