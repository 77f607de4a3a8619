using System.Security.Claims;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace TokenService.Validation.AspNetCore;

/// <summary>
/// ASP.NET Core authentication with the token service's access tokens (RFC 6750 bearer). Failures challenge with
/// <c>WWW-Authenticate: Bearer error="invalid_token", error_description="…"</c> (RFC 6750 §3).
/// </summary>
public sealed class TokenServiceBearerHandler(
    IOptionsMonitor<AccessTokenValidationOptions> options, ILoggerFactory logger, UrlEncoder encoder, ValidatorRegistry validators)
    : AuthenticationHandler<AccessTokenValidationOptions>(options, logger, encoder)
{
    public const string DefaultScheme = "TokenService";
    private AccessTokenValidationResult? _failure;

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        string? authorization = Request.Headers.Authorization;
        if (string.IsNullOrEmpty(authorization) || !authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return AuthenticateResult.NoResult();
        }

        var validator = validators.For(Scheme.Name, Options, Logger);
        var result = await validator.ValidateAsync(authorization["Bearer ".Length..].Trim(), Context.RequestAborted);
        if (!result.IsValid)
        {
            _failure = result;
            return AuthenticateResult.Fail(result.Description ?? result.Error.ToString());
        }

        var p = result.Payload!;
        var claims = new List<Claim> { new("sub", p.Subject!), new("client_id", p.ClientId ?? string.Empty), new("jti", p.JwtId ?? string.Empty) };
        if (p.SessionId is not null)
        {
            claims.Add(new Claim("sid", p.SessionId));
        }

        foreach (var scope in (p.Scope ?? string.Empty).Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            claims.Add(new Claim("scope", scope));
        }

        var identity = new ClaimsIdentity(claims, Scheme.Name, "sub", ClaimTypes.Role);
        return AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), Scheme.Name));
    }

    protected override Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        Response.StatusCode = _failure?.Error == AccessTokenError.Unavailable ? 503 : 401;
        Response.Headers.WWWAuthenticate = _failure is null
            ? "Bearer"
            : $"Bearer error=\"invalid_token\", error_description=\"{(_failure.Description ?? "The access token is not valid.").Replace("\"", "'", StringComparison.Ordinal)}\"";
        return Task.CompletedTask;
    }
}

/// <summary>One validator (with its caches) per authentication scheme.</summary>
public sealed class ValidatorRegistry : IDisposable
{
    private readonly Dictionary<string, AccessTokenValidator> _validators = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();

    public AccessTokenValidator For(string scheme, AccessTokenValidationOptions options, ILogger logger)
    {
        lock (_gate)
        {
            if (!_validators.TryGetValue(scheme, out var validator))
            {
                validator = new AccessTokenValidator(options, logger);
                _validators[scheme] = validator;
            }

            return validator;
        }
    }

    public void Dispose()
    {
        foreach (var validator in _validators.Values)
        {
            validator.Dispose();
        }
    }
}

public static class TokenServiceBearerExtensions
{
    /// <summary><c>services.AddAuthentication(TokenServiceBearerHandler.DefaultScheme).AddTokenServiceBearer(o => { o.Authority = …; o.Audience = …; })</c>.</summary>
    public static AuthenticationBuilder AddTokenServiceBearer(this AuthenticationBuilder builder, Action<AccessTokenValidationOptions> configure) =>
        builder.AddTokenServiceBearer(TokenServiceBearerHandler.DefaultScheme, configure);

    public static AuthenticationBuilder AddTokenServiceBearer(this AuthenticationBuilder builder, string scheme, Action<AccessTokenValidationOptions> configure)
    {
        builder.Services.AddSingleton<ValidatorRegistry>();
        return builder.AddScheme<AccessTokenValidationOptions, TokenServiceBearerHandler>(scheme, configure);
    }
}
