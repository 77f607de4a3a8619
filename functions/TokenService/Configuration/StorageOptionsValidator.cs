using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace TokenService.Configuration;

/// <summary>
/// Start-up validation of <c>Storage</c>: outside Development the sessions must live in Table Storage. In-memory
/// sessions are lost at every restart (every user signed out, rotating refresh tokens and their reuse detection
/// forgotten) and are not shared between instances of a scaled-out app. Test hosts opt in in code
/// (<see cref="Sessions.InMemorySessionsOutsideDevelopment"/>), never by configuration.
/// </summary>
public sealed class StorageOptionsValidator(IHostEnvironment environment, IEnumerable<Sessions.InMemorySessionsOutsideDevelopment> inMemoryOptIn) : IValidateOptions<StorageOptions>
{
    public ValidateOptionsResult Validate(string? name, StorageOptions o) =>
        o.UsesTableStorage || environment.IsDevelopment() || inMemoryOptIn.Any()
            ? ValidateOptionsResult.Success
            : ValidateOptionsResult.Fail($"Storage:TableServiceUri (with the app's managed identity) or Storage:TableConnectionString is required outside Development (environment '{environment.EnvironmentName}'): in-memory sessions are lost at every restart and not shared between instances.");
}
