using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using TokenService.Configuration;
using TokenService.Keys;

namespace TokenService.Tests.Keys;

/// <summary>A fresh deployment's first requests arrive together: every one of them gets the first key, none a 503.</summary>
public sealed class FirstKeyTests
{
    [Fact]
    public async Task Concurrent_first_requests_all_get_the_one_first_key()
    {
        var path = Path.Combine(Path.GetTempPath(), "first-keys-" + Guid.NewGuid().ToString("N"), "keys.json");
        var keys = new LocalSigningKeyService(Options.Create(new KeysOptions { DevelopmentKeyPath = path }), TimeProvider.System, NullLogger<LocalSigningKeyService>.Instance);
        var sets = await Task.WhenAll(Enumerable.Range(0, 50).Select(_ => Task.Run(async () => await keys.GetKeySetAsync(CancellationToken.None))));
        Assert.All(sets, set => Assert.NotNull(set.Active));
        Assert.Single(sets.Select(set => set.Active!.Kid).Distinct());
        Directory.Delete(Path.GetDirectoryName(path)!, recursive: true);
    }
}
