using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using TokenService.Configuration;
using TokenService.Keys;

namespace TokenService.Tests.Keys;

/// <summary>The rotation check names keys by the kid that JWKS and tokens carry (RFC 7638 thumbprint).</summary>
public sealed class KeyRotationSummaryTests
{
    [Fact]
    public async Task The_rotation_summary_names_the_created_key_by_its_jwks_kid()
    {
        var path = Path.Combine(Path.GetTempPath(), "summary-keys-" + Guid.NewGuid().ToString("N"), "keys.json");
        var keys = new LocalSigningKeyService(Options.Create(new KeysOptions { DevelopmentKeyPath = path }), TimeProvider.System, NullLogger<LocalSigningKeyService>.Instance);
        var result = await keys.RunRotationCheckAsync(CancellationToken.None);
        var set = await keys.GetKeySetAsync(CancellationToken.None);
        Assert.True(result.Changed);
        Assert.Contains("kid " + set.Active!.Kid, result.Summary, StringComparison.Ordinal);
        Directory.Delete(Path.GetDirectoryName(path)!, recursive: true);
    }
}
