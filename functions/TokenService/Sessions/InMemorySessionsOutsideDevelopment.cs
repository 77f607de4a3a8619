namespace TokenService.Sessions;

/// <summary>
/// The one way to keep sessions in memory outside Development: a service registered in code by
/// <see cref="Hosting.TokenServiceServiceCollectionExtensions.AllowInMemorySessionsOutsideDevelopment"/>, which only
/// test hosts call. Like <see cref="Keys.LocalSigningKeyOutsideDevelopment"/> it is deliberately not a configuration
/// key, so that no app setting set by mistake on a deployed app can turn the rule off.
/// </summary>
public sealed class InMemorySessionsOutsideDevelopment
{
    internal static readonly InMemorySessionsOutsideDevelopment Instance = new();

    private InMemorySessionsOutsideDevelopment()
    {
    }
}
