using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace TokenService.Configuration;

/// <summary>
/// Refuses any setting whose value is still an App Service / Functions Key Vault reference
/// (<c>@Microsoft.KeyVault(SecretUri=…)</c> or <c>@Microsoft.KeyVault(VaultName=…;SecretName=…)</c>). The platform
/// passes that literal to the app when it cannot resolve the reference (no access to the vault, a deleted secret,
/// a network rule), and the literal passes every length check of a secret while being guessable: the vault name
/// in it is derivable from the app's public host name. A secret must be unpredictable (ASVS V6.4.1), so such a
/// value is never used, in any environment, whatever its key; the message names the key, never its value.
/// </summary>
public sealed class KeyVaultReferenceValidator(IConfiguration configuration) : IValidateOptions<TokenServiceOptions>
{
    public const string ReferencePrefix = "@Microsoft.KeyVault(";

    public ValidateOptionsResult Validate(string? name, TokenServiceOptions o)
    {
        var unresolved = UnresolvedReferences(configuration);
        return unresolved.Count == 0
            ? ValidateOptionsResult.Success
            : ValidateOptionsResult.Fail(unresolved.Select(key =>
                $"{key} (app setting {key.Replace(":", "__", StringComparison.Ordinal)}) is a Key Vault reference that did not resolve: grant the app's managed identity read access to the secret (Key Vault Secrets User), check the reference in the portal's Environment variables blade, then restart the app."));
    }

    /// <summary>Every configuration key whose value is an unresolved Key Vault reference, in key order.</summary>
    public static IReadOnlyList<string> UnresolvedReferences(IConfiguration configuration) =>
        configuration.AsEnumerable()
            .Where(entry => entry.Value?.TrimStart().StartsWith(ReferencePrefix, StringComparison.OrdinalIgnoreCase) == true)
            .Select(entry => entry.Key)
            .Distinct(StringComparer.OrdinalIgnoreCase)
            .Order(StringComparer.Ordinal)
            .ToList();
}
