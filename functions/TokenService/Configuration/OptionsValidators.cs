using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using TokenService.Clients;
using TokenService.Validation.Jose;

namespace TokenService.Configuration;

/// <summary>Start-up validation of <c>TokenService</c>: every message says which key to fix and how.</summary>
public sealed class TokenServiceOptionsValidator : IValidateOptions<TokenServiceOptions>
{
    public ValidateOptionsResult Validate(string? name, TokenServiceOptions o)
    {
        var errors = new List<string>();
        if (!Uri.TryCreate(o.Issuer, UriKind.Absolute, out var issuer) || issuer.Scheme is not ("https" or "http") || !string.IsNullOrEmpty(issuer.Query) || !string.IsNullOrEmpty(issuer.Fragment))
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

/// <summary>Start-up validation of <c>Idp</c>.</summary>
public sealed class IdpOptionsValidator(IHostEnvironment environment) : IValidateOptions<IdpOptions>
{
    public ValidateOptionsResult Validate(string? name, IdpOptions o)
    {
        if (!o.IsConfigured)
        {
            return environment.IsDevelopment()
                ? ValidateOptionsResult.Success
                : ValidateOptionsResult.Fail("Idp:Issuer, Idp:Audience and Idp:JwksUri (or Idp:JwksPath) are required outside Development.");
        }

        var errors = new List<string>();
        if (string.IsNullOrWhiteSpace(o.Issuer))
        {
            errors.Add("Idp:Issuer is required: the exact iss of the IdP's ID tokens.");
        }

        if (string.IsNullOrWhiteSpace(o.Audience))
        {
            errors.Add("Idp:Audience is required: the aud the IdP puts in ID tokens for this service.");
        }

        var hasUri = !string.IsNullOrWhiteSpace(o.JwksUri);
        var hasPath = !string.IsNullOrWhiteSpace(o.JwksPath);
        if (hasUri == hasPath)
        {
            errors.Add("Set exactly one of Idp:JwksUri (a URL) or Idp:JwksPath (a local JWKS file).");
        }
        else if (hasUri && (!Uri.TryCreate(o.JwksUri, UriKind.Absolute, out var uri) || !(uri.Scheme == "https" || (uri.Scheme == "http" && (uri.IsLoopback || environment.IsDevelopment())))))
        {
            errors.Add("Idp:JwksUri must be an absolute https URL (http only for loopback or in Development).");
        }
        else if (hasPath && !File.Exists(o.JwksPath))
        {
            errors.Add($"Idp:JwksPath points to a file that does not exist: {o.JwksPath}.");
        }

        if (string.IsNullOrWhiteSpace(o.UserIdClaim))
        {
            errors.Add("Idp:UserIdClaim must name a claim (default sub; Entra ID: oid).");
        }

        if (o.JwksRefetchInterval < TimeSpan.Zero || o.JwksCacheLifetime <= TimeSpan.Zero)
        {
            errors.Add("Idp:JwksRefetchInterval must be ≥ 0 and Idp:JwksCacheLifetime > 0.");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}

/// <summary>Start-up validation of <c>Clients</c>.</summary>
public sealed class ClientRegistryOptionsValidator : IValidateOptions<ClientRegistryOptions>
{
    public ValidateOptionsResult Validate(string? name, ClientRegistryOptions o)
    {
        var errors = new List<string>();
        var ids = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < o.Clients.Count; i++)
        {
            var c = o.Clients[i];
            var key = $"Clients:{i}";
            if (string.IsNullOrWhiteSpace(c.ClientId) || c.ClientId.Length > 128 || c.ClientId.Any(ch => char.IsControl(ch) || ch == ':'))
            {
                errors.Add($"{key}:ClientId is required (at most 128 characters, no ':' or control characters).");
                continue;
            }

            if (!ids.Add(c.ClientId))
            {
                errors.Add($"{key}:ClientId '{c.ClientId}' is registered twice.");
            }

            var type = RegisteredClient.ParseType(c.Type);
            if (type is null)
            {
                errors.Add($"{key}:Type must be one of spa, confidential, resource_server, admin.");
                continue;
            }

            if (type == ClientType.Spa)
            {
                if (!string.IsNullOrEmpty(c.Secret))
                {
                    errors.Add($"{key}: a spa client is public and must not have a Secret.");
                }

                if (c.AllowedOrigins.Count == 0)
                {
                    errors.Add($"{key}:AllowedOrigins needs at least one origin for a spa client (e.g. https://app.example.edu).");
                }
            }
            else if (string.IsNullOrEmpty(c.Secret) || c.Secret.Length < 8)
            {
                errors.Add($"{key}:Secret is required for a {c.Type} client (at least 8 characters; use a long random value).");
            }

            foreach (var origin in c.AllowedOrigins)
            {
                if (!Uri.TryCreate(origin, UriKind.Absolute, out var uri) || uri.Scheme is not ("https" or "http") || uri.AbsolutePath != "/" || !string.IsNullOrEmpty(uri.Query))
                {
                    errors.Add($"{key}:AllowedOrigins value '{origin}' must be an origin: scheme://host[:port] with no path.");
                }
            }

            if (c.AllowedScopes.Any(s => string.IsNullOrWhiteSpace(s) || s.Contains(' ', StringComparison.Ordinal)))
            {
                errors.Add($"{key}:AllowedScopes values must be single scope tokens without spaces.");
            }

            if (c.AllowedAudiences.Any(string.IsNullOrWhiteSpace))
            {
                errors.Add($"{key}:AllowedAudiences values must not be empty.");
            }

            if (c.IdpAudience is { Length: > 0 } idpAudience && (string.IsNullOrWhiteSpace(idpAudience) || idpAudience.Trim() != idpAudience))
            {
                errors.Add($"{key}:IdpAudience must be the exact aud the IdP puts in this application's ID tokens (its client id at the IdP), without surrounding spaces.");
            }
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}

/// <summary>Start-up validation of <c>Keys</c>, including the rule that the local key never runs in Production.</summary>
public sealed class KeysOptionsValidator(IHostEnvironment environment, Microsoft.Extensions.Options.IOptions<TokenServiceOptions> tokenOptions) : IValidateOptions<KeysOptions>
{
    public ValidateOptionsResult Validate(string? name, KeysOptions o)
    {
        var errors = new List<string>();
        if (!JwsAlgorithms.Signing.Contains(o.Algorithm))
        {
            errors.Add("Keys:Algorithm must be RS256, PS256 or ES256.");
        }

        if (!o.UsesKeyVault && environment.IsProduction())
        {
            errors.Add("Keys:KeyVaultUri is required in Production: the local development signing key is refused there.");
        }

        if (o.UsesKeyVault && (!Uri.TryCreate(o.KeyVaultUri, UriKind.Absolute, out var vault) || vault.Scheme != "https" && !vault.IsLoopback))
        {
            errors.Add("Keys:KeyVaultUri must be an https URL, e.g. https://my-vault.vault.azure.net/.");
        }

        TokenServiceOptionsValidator.Positive(errors, "Keys:RotationInterval", o.RotationInterval, TimeSpan.FromDays(3650));
        TokenServiceOptionsValidator.Positive(errors, "Keys:PropagationTime", o.PropagationTime, TimeSpan.FromDays(365));
        TokenServiceOptionsValidator.Positive(errors, "Keys:RetentionTime", o.RetentionTime, TimeSpan.FromDays(365));
        TokenServiceOptionsValidator.Positive(errors, "Keys:CheckInterval", o.CheckInterval, TimeSpan.FromDays(365));
        if (o.PropagationTime >= o.RotationInterval)
        {
            errors.Add("Keys:PropagationTime must be shorter than Keys:RotationInterval.");
        }

        var minimumRetention = tokenOptions.Value.AccessTokenLifetime + o.JwksMaxAge;
        if (o.RetentionTime < minimumRetention)
        {
            errors.Add($"Keys:RetentionTime must be at least the access-token lifetime plus the JWKS cache age ({minimumRetention}), so no token outlives its key in the JWKS.");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}

/// <summary>Start-up validation of <c>Events</c>.</summary>
public sealed class EventsOptionsValidator(IHostEnvironment environment) : IValidateOptions<EventsOptions>
{
    public ValidateOptionsResult Validate(string? name, EventsOptions o)
    {
        var errors = new List<string>();
        if (string.IsNullOrEmpty(o.WebhookSecret) && !environment.IsDevelopment())
        {
            errors.Add("Events:WebhookSecret is required outside Development: Event Grid deliveries must carry it as ?key=.");
        }
        else if (o.WebhookSecret is { Length: > 0 and < 16 })
        {
            errors.Add("Events:WebhookSecret must be at least 16 characters.");
        }

        if (!string.IsNullOrWhiteSpace(o.SsfIssuer) && string.IsNullOrWhiteSpace(o.SsfJwksUri) == string.IsNullOrWhiteSpace(o.SsfJwksPath))
        {
            errors.Add("With Events:SsfIssuer set exactly one of Events:SsfJwksUri or Events:SsfJwksPath is required.");
        }

        if (!string.IsNullOrWhiteSpace(o.SsfJwksPath) && !File.Exists(o.SsfJwksPath))
        {
            errors.Add($"Events:SsfJwksPath points to a file that does not exist: {o.SsfJwksPath}.");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
