using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using TokenService.Keys;

namespace TokenService.Configuration;

/// <summary>
/// Start-up validation of <c>Keys</c>, including the rule that the local file key runs only in Development (or in a
/// test host that registered <see cref="LocalSigningKeyOutsideDevelopment"/> in code).
/// </summary>
public sealed class KeysOptionsValidator(
    IHostEnvironment environment,
    IOptions<TokenServiceOptions> tokenOptions,
    IEnumerable<LocalSigningKeyOutsideDevelopment> localKeyOptIn) : IValidateOptions<KeysOptions>
{
    public ValidateOptionsResult Validate(string? name, KeysOptions o)
    {
        var errors = new List<string>();
        if (!JwsAlgorithms.Signing.Contains(o.Algorithm))
        {
            errors.Add("Keys:Algorithm must be RS256, PS256 or ES256.");
        }

        // The local key is a private key in a file next to the app: fine on a developer's machine, never on a
        // deployed one, whatever its environment is called (Staging, Test, a typo of Production). ASVS V6.4.1/V6.4.2:
        // key material belongs in a vault.
        if (!o.UsesKeyVault && !environment.IsDevelopment() && !localKeyOptIn.Any())
        {
            errors.Add($"Keys:KeyVaultUri (or Keys:Vaults:N:Uri) is required outside Development (environment '{environment.EnvironmentName}'): the local development signing key is refused there.");
        }

        ValidateVaults(errors, o);

        TokenServiceOptionsValidator.Positive(errors, "Keys:RotationInterval", o.RotationInterval, TimeSpan.FromDays(3650));
        TokenServiceOptionsValidator.Positive(errors, "Keys:PropagationTime", o.PropagationTime, TimeSpan.FromDays(365));
        TokenServiceOptionsValidator.Positive(errors, "Keys:RetentionTime", o.RetentionTime, TimeSpan.FromDays(365));
        TokenServiceOptionsValidator.Positive(errors, "Keys:CheckInterval", o.CheckInterval, TimeSpan.FromDays(365));
        if (o.PropagationTime >= o.RotationInterval)
        {
            errors.Add("Keys:PropagationTime must be shorter than Keys:RotationInterval.");
        }

        // The schedule alone publishes the active key, the next one ahead of use and the retired keys still in their
        // retention: the cap must leave room for them, since the scheduled rotation is never refused.
        var scheduled = o.RotationInterval > TimeSpan.Zero ? KeyLifecyclePolicy.KeysPublishedBySchedule(o) : 3;
        if (o.MaxPublishedKeys < scheduled || o.MaxPublishedKeys > 100)
        {
            errors.Add($"Keys:MaxPublishedKeys must be between {scheduled} (what the rotation schedule publishes at once: active, next and retired keys) and 100.");
        }

        // Where Azure Policy caps a key's validity (exp − created), a key must still outlive its tokens: published before
        // it signs, signing for a rotation interval, published after until its last token expired.
        if (o.MaximumKeyValidity is { } maximum && (maximum <= TimeSpan.Zero || maximum < o.KeyLifetime))
        {
            var rotation = maximum - o.PropagationTime - o.RetentionTime - o.CheckInterval;
            errors.Add($"Keys:MaximumKeyValidity ({maximum}) is shorter than Keys:PropagationTime + Keys:RotationInterval + Keys:RetentionTime ({o.KeyLifetime}): "
                + (rotation > o.PropagationTime
                    ? $"set Keys:RotationInterval to at most {rotation} (the maximum validity less propagation, retention and one check interval)."
                    : "shorten Keys:PropagationTime and Keys:RetentionTime, or ask for a longer maximum validity in the Azure Policy assignment."));
        }

        // The cross-check needs valid TokenService options; when they are invalid their own validator reports it,
        // and this one still reports every Keys error of the same start.
        TimeSpan? accessTokenLifetime;
        try
        {
            accessTokenLifetime = tokenOptions.Value.AccessTokenLifetime;
        }
        catch (OptionsValidationException)
        {
            accessTokenLifetime = null;
        }

        var minimumRetention = (accessTokenLifetime ?? TimeSpan.Zero) + o.JwksMaxAge;
        if (accessTokenLifetime is not null && o.RetentionTime < minimumRetention)
        {
            errors.Add($"Keys:RetentionTime must be at least the access-token lifetime plus the JWKS cache age ({minimumRetention}), so no token outlives its key in the JWKS.");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    /// <summary>The one-vault form or the list, never both; every URI https (loopback for tests) and distinct.</summary>
    private static void ValidateVaults(List<string> errors, KeysOptions o)
    {
        if (!string.IsNullOrWhiteSpace(o.KeyVaultUri) && o.Vaults.Count > 0)
        {
            errors.Add("Keys:KeyVaultUri and Keys:Vaults are both set: configure one vault as Keys:KeyVaultUri, or several as "
                + "Keys:Vaults:0:Uri, Keys:Vaults:1:Uri, … (Keys__Vaults__N__Uri), not both.");
            return;
        }

        var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        var vaults = o.EffectiveVaults;
        for (var i = 0; i < vaults.Count; i++)
        {
            var name = string.IsNullOrWhiteSpace(o.KeyVaultUri) ? $"Keys:Vaults:{i}:Uri" : "Keys:KeyVaultUri";
            // https only, loopback included: the clients' bearer token policy (Azure.Core's) refuses any other scheme, so
            // an http vault could only fail every request at run time.
            if (!Uri.TryCreate(vaults[i].Uri, UriKind.Absolute, out var vault) || vault.Scheme != "https")
            {
                errors.Add($"{name} must be an https URL, e.g. https://my-vault.vault.azure.net/ or https://my-hsm.managedhsm.azure.net/.");
            }
            else if (!seen.Add(vault.GetLeftPart(UriPartial.Authority)))
            {
                errors.Add($"{name} repeats the vault {vault.Host}: each entry of Keys:Vaults must be another vault.");
            }

            if (vaults[i].SignsPerWindow is { } own && own is < 1 or > 1_000_000)
            {
                errors.Add($"Keys:Vaults:{i}:SignsPerWindow must be between 1 and 1000000.");
            }
        }

        if (o.SignsPerWindow is < 1 or > 1_000_000)
        {
            errors.Add("Keys:SignsPerWindow must be between 1 and 1000000 (Key Vault Premium: 2000 per 10 s for RSA-2048 and P-256 HSM keys).");
        }

        if (o.SignWindow < TimeSpan.FromMilliseconds(100) || o.SignWindow > TimeSpan.FromMinutes(1))
        {
            errors.Add("Keys:SignWindow must be between 00:00:00.1 and 00:01:00, e.g. 00:00:10.");
        }

        if (o.SignAttemptTimeout < TimeSpan.FromMilliseconds(100) || o.SignAttemptTimeout > TimeSpan.FromMinutes(1))
        {
            errors.Add("Keys:SignAttemptTimeout must be between 00:00:00.1 and 00:01:00, e.g. 00:00:03.");
        }
    }
}
