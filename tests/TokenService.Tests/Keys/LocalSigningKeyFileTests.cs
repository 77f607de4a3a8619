using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using TokenService.Configuration;
using TokenService.Keys;

namespace TokenService.Tests.Keys;

/// <summary>The local development key file holds private keys: only its owner may read it, from its creation on.</summary>
public sealed class LocalSigningKeyFileTests
{
    private const UnixFileMode OwnerReadWrite = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    [Fact]
    public async Task The_key_file_and_its_new_directory_are_owner_only()
    {
        if (OperatingSystem.IsWindows())
        {
            return; // Unix permission bits; on Windows the file inherits the profile's ACL.
        }

        var directory = Path.Combine(Path.GetTempPath(), "ts-keyfile-" + Guid.NewGuid().ToString("N"), ".devkeys");
        var path = Path.Combine(directory, "signing-keys.json");
        try
        {
            using (var service = new LocalSigningKeyService(Options.Create(new KeysOptions { DevelopmentKeyPath = path }), TimeProvider.System, NullLogger<LocalSigningKeyService>.Instance))
            {
                var result = await service.RunRotationCheckAsync(CancellationToken.None);
                Assert.True(result.Changed, result.Summary);
            }

            Assert.Equal(OwnerReadWrite, File.GetUnixFileMode(path));
            Assert.Equal(OwnerReadWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(directory));
            Assert.False(File.Exists(path + ".tmp"));
        }
        finally
        {
            Directory.Delete(Path.GetDirectoryName(directory)!, recursive: true);
        }
    }

    [Fact]
    public async Task A_world_readable_temporary_file_left_by_a_crash_is_not_reused()
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        var directory = Path.Combine(Path.GetTempPath(), "ts-keyfile-" + Guid.NewGuid().ToString("N"));
        var path = Path.Combine(directory, "signing-keys.json");
        Directory.CreateDirectory(directory);
        await File.WriteAllTextAsync(path + ".tmp", "partial");
        File.SetUnixFileMode(path + ".tmp", OwnerReadWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        try
        {
            using (var service = new LocalSigningKeyService(Options.Create(new KeysOptions { DevelopmentKeyPath = path }), TimeProvider.System, NullLogger<LocalSigningKeyService>.Instance))
            {
                await service.RunRotationCheckAsync(CancellationToken.None);
            }

            Assert.Equal(OwnerReadWrite, File.GetUnixFileMode(path));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }
}
