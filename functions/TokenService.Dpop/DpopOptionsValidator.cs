using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace TokenService.Dpop;

/// <summary>Start-up validation of <c>Dpop</c>: every message says which key to fix and how.</summary>
public sealed class DpopOptionsValidator(IHostEnvironment environment) : IValidateOptions<DpopOptions>
{
    public ValidateOptionsResult Validate(string? name, DpopOptions o)
    {
        var errors = new List<string>();

        // RFC 9449 §11.1: proofs are accepted "for a relatively brief period on the order of seconds or minutes".
        if (o.ProofLifetime < TimeSpan.FromSeconds(1) || o.ProofLifetime > TimeSpan.FromMinutes(10))
        {
            errors.Add("Dpop:ProofLifetime must be between 00:00:01 and 00:10:00, e.g. 00:01:00.");
        }

        if (o.ClockSkew < TimeSpan.Zero || o.ClockSkew > TimeSpan.FromMinutes(5))
        {
            errors.Add("Dpop:ClockSkew must be between 00:00:00 and 00:05:00, e.g. 00:00:05.");
        }

        if (o.NonceLifetime < TimeSpan.FromSeconds(10) || o.NonceLifetime > TimeSpan.FromHours(1))
        {
            errors.Add("Dpop:NonceLifetime must be between 00:00:10 and 01:00:00, e.g. 00:05:00.");
        }

        if (o.NonceSecret is { Length: > 0 and < 32 })
        {
            errors.Add("Dpop:NonceSecret must be at least 32 characters (use a long random value, the same on every instance).");
        }

        // Without a shared secret each instance accepts only its own nonces: a scaled-out app would answer
        // use_dpop_nonce again and again to clients whose requests land on another instance.
        if (o.RequireNonce && string.IsNullOrEmpty(o.NonceSecret) && !environment.IsDevelopment())
        {
            errors.Add("Dpop:NonceSecret is required outside Development when Dpop:RequireNonce is true: every instance must accept every instance's nonces.");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
