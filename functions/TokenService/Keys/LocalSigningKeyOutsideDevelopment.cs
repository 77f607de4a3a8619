namespace TokenService.Keys;

/// <summary>
/// The one way to run the local file signing key outside Development: a service registered in code by
/// <see cref="Hosting.TokenServiceServiceCollectionExtensions.AllowLocalSigningKeyOutsideDevelopment"/>, which only
/// test hosts call. It is deliberately not a configuration key: app settings, environment variables and Key Vault
/// references can all be set by mistake on a deployed app, whereas neither host's Program.cs registers this, so a
/// deployment cannot enable it. The tests need it because they run in the environment "Testing" (so that every
/// other outside-Development rule applies to them) while signing with a throw-away local key.
/// </summary>
public sealed class LocalSigningKeyOutsideDevelopment
{
    internal static readonly LocalSigningKeyOutsideDevelopment Instance = new();

    private LocalSigningKeyOutsideDevelopment()
    {
    }
}
