using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace TokenService.Configuration;

/// <summary>Start-up validation of <c>TokenService</c>: every message says which key to fix and how.</summary>
public sealed class TokenServiceOptionsValidator(IHostEnvironment environment) : IValidateOptions<TokenServiceOptions>
{
    public ValidateOptionsResult Validate(string? name, TokenServiceOptions o)
    {
        var errors = new List<string>();
        if (string.IsNullOrWhiteSpace(o.Issuer))
        {
            // Only Development has a default (http://127.0.0.1:7071). Elsewhere the issuer is refused only when it is
            // missing, never for differing from the listen address: behind App Service or a reverse proxy the host
            // listens on an internal http port while clients reach the public https name, and the issuer must be the
            // latter (RFC 8414 §2, §3.3: the issuer is the URL clients use and compare).
            errors.Add($"TokenService:Issuer is required outside Development (environment '{environment.EnvironmentName}'): set TokenService__Issuer to the URL clients reach this service at, e.g. https://tokens.example.edu; discovery and every token's iss are built from it.");
        }
        else if (!Uri.TryCreate(o.Issuer, UriKind.Absolute, out var issuer) || issuer.Scheme is not ("https" or "http") || !string.IsNullOrEmpty(issuer.Query) || !string.IsNullOrEmpty(issuer.Fragment))
        {
            errors.Add("TokenService:Issuer must be an absolute http(s) URL without query or fragment, e.g. https://tokens.example.edu.");
        }

        Positive(errors, "TokenService:AccessTokenLifetime", o.AccessTokenLifetime, TimeSpan.FromDays(1));
        Positive(errors, "TokenService:RefreshTokenLifetime", o.RefreshTokenLifetime, TimeSpan.FromDays(365));
        Positive(errors, "TokenService:SessionIdleTimeout", o.SessionIdleTimeout, TimeSpan.FromDays(365));
        Positive(errors, "TokenService:SessionAbsoluteLifetime", o.SessionAbsoluteLifetime, TimeSpan.FromDays(365));
        if (o.MaxSessionsPerUser is < 1 or > 50)
        {
            errors.Add("TokenService:MaxSessionsPerUser must be between 1 and 50 (one Table transaction holds the user row and every session it changes).");
        }

        if (o.RefreshTokenReuseLeeway < TimeSpan.Zero || o.RefreshTokenReuseLeeway > TimeSpan.FromMinutes(5))
        {
            errors.Add("TokenService:RefreshTokenReuseLeeway must be between 00:00:00 and 00:05:00.");
        }

        if (o.DependencyBudget < TimeSpan.FromSeconds(1) || o.DependencyBudget > TimeSpan.FromSeconds(60))
        {
            errors.Add("TokenService:DependencyBudget must be between 00:00:01 and 00:01:00, e.g. 00:00:10.");
        }

        if (o.HealthProbeBudget < TimeSpan.FromMilliseconds(100) || o.HealthProbeBudget > TimeSpan.FromSeconds(10))
        {
            errors.Add("TokenService:HealthProbeBudget must be between 00:00:00.1 and 00:00:10, e.g. 00:00:02.");
        }

        if (o.ClockSkew < TimeSpan.Zero || o.ClockSkew > TimeSpan.FromSeconds(60))
        {
            errors.Add("TokenService:ClockSkew must be between 00:00:00 and 00:01:00 (RFC 8725: keep skew small).");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    internal static void Positive(List<string> errors, string key, TimeSpan value, TimeSpan max)
    {
        if (value <= TimeSpan.Zero || value > max)
        {
            errors.Add($"{key} must be a positive TimeSpan (d.hh:mm:ss) of at most {max}.");
        }
    }
}
