using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace TokenService.Configuration;

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
