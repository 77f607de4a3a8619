using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TokenService.Configuration;
using TokenService.Jwt;

namespace TokenService.Keys;

/// <summary>
/// Embedded-default signing keys: generated locally and persisted to a file (like a developer signing credential)
/// so that a restart keeps the JWKS. Follows the same lifecycle as Key Vault keys, with timings down to seconds
/// for tests and demos. Refused outside Development (the host refuses to start; see <see cref="KeysOptionsValidator"/>).
/// </summary>
public sealed partial class LocalSigningKeyService : LifecycleSigningKeyService, IDisposable
{
    private readonly ConcurrentDictionary<string, AsymmetricAlgorithm> _privateKeys = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, LocalKeyEntry> _unpublished = new(StringComparer.Ordinal);

    public LocalSigningKeyService(IOptions<KeysOptions> options, TimeProvider time, ILogger<LocalSigningKeyService> logger)
        : base(options.Value, time, logger)
    {
    }

    public string KeyFilePath => Options.DevelopmentKeyPath ?? Path.Combine(AppContext.BaseDirectory, ".devkeys", "signing-keys.json");

    // One process owns the file: what it wrote is what it has.
    protected override TimeSpan ReloadInterval => TimeSpan.FromDays(36500);

    public override ValueTask<byte[]> SignAsync(SigningKey key, ReadOnlyMemory<byte> signingInput, CancellationToken cancellationToken)
    {
        if (!_privateKeys.TryGetValue(key.ProviderKeyId, out var privateKey))
        {
            throw new InvalidOperationException($"No local private key for {key.Kid}.");
        }

        var hash = JwsAlgorithms.HashFor(key.Algorithm);
        var signature = privateKey switch
        {
            RSA rsa => rsa.SignData(signingInput.Span, hash, JwsAlgorithms.RsaPaddingFor(key.Algorithm)),
            ECDsa ecdsa => ecdsa.SignData(signingInput.Span, hash, DSASignatureFormat.IeeeP1363FixedFieldConcatenation),
            _ => throw new InvalidOperationException("Unsupported key type."),
        };
        return ValueTask.FromResult(signature);
    }

    protected override Task<IReadOnlyList<StoredSigningKey>> LoadKeysAsync(CancellationToken cancellationToken)
    {
        var entries = ReadFile().Keys.Where(e => e.Algorithm == Options.Algorithm).ToList();
        IReadOnlyList<StoredSigningKey> keys = entries.Select(Materialize).ToList();
        if (keys.Count > 0)
        {
            LogLoadedKeys(Logger, keys.Count, KeyFilePath);
        }

        return Task.FromResult(keys);
    }

    protected override Task<NewSigningKey> CreateKeyAsync(CancellationToken cancellationToken)
    {
        var pem = CreatePrivateKeyPem(Options.Algorithm);

        // Read after generating the key (an RSA key takes a noticeable time): it exists from here. It stays in
        // memory, out of the file, until it is published with its activation time.
        var entry = new LocalKeyEntry { Id = Guid.NewGuid().ToString("N"), Algorithm = Options.Algorithm, CreatedAt = Time.GetUtcNow(), PrivateKeyPem = pem };
        _unpublished[entry.Id] = entry;
        return Task.FromResult(new NewSigningKey(entry.Id, entry.Algorithm, PublicJwk(entry), entry.CreatedAt));
    }

    protected override Task<StoredSigningKey> PublishKeyAsync(NewSigningKey key, DateTimeOffset activatesAt, CancellationToken cancellationToken)
    {
        if (!_unpublished.TryRemove(key.ProviderKeyId, out var entry))
        {
            throw new InvalidOperationException($"No unpublished local key {key.ProviderKeyId}.");
        }

        entry.ActivatesAt = activatesAt;
        var file = ReadFile();
        file.Keys.Add(entry);
        WriteFile(file);
        LogCreatedKey(Logger, KeyFilePath);
        return Task.FromResult(Materialize(entry));
    }

    protected override Task RemoveKeyAsync(KeyVersionInfo key, CancellationToken cancellationToken)
    {
        _unpublished.TryRemove(key.ProviderKeyId, out _);
        var file = ReadFile();
        file.Keys.RemoveAll(e => e.Id == key.ProviderKeyId);
        WriteFile(file);
        if (_privateKeys.TryRemove(key.ProviderKeyId, out var privateKey))
        {
            privateKey.Dispose();
        }

        return Task.CompletedTask;
    }

    private StoredSigningKey Materialize(LocalKeyEntry entry) =>
        new(new KeyVersionInfo(entry.Id, entry.CreatedAt, entry.ActivatesAt ?? entry.CreatedAt), entry.Algorithm, PublicJwk(entry));

    /// <summary>The entry's public key; its private key is kept for signing.</summary>
    private PublicJsonWebKey PublicJwk(LocalKeyEntry entry)
    {
        var privateKey = _privateKeys.GetOrAdd(entry.Id, _ =>
        {
            AsymmetricAlgorithm created = JwsAlgorithms.IsRsa(entry.Algorithm) ? RSA.Create() : ECDsa.Create();
            created.ImportFromPem(entry.PrivateKeyPem);
            return created;
        });
        return privateKey is RSA rsa
            ? PublicJsonWebKey.FromRsa(rsa.ExportParameters(false), entry.Algorithm)
            : PublicJsonWebKey.FromEc(((ECDsa)privateKey).ExportParameters(false), entry.Algorithm);
    }

    private LocalKeyFile ReadFile() =>
        File.Exists(KeyFilePath)
            ? JsonSerializer.Deserialize(File.ReadAllBytes(KeyFilePath), LocalKeyFileContext.Default.LocalKeyFile) ?? new LocalKeyFile()
            : new LocalKeyFile();

    private void WriteFile(LocalKeyFile file)
    {
        // The file holds private keys: owner-only from the moment it exists (CWE-732). A chmod after
        // writing would leave a window in which the key is readable under the umask's default mode (often 0644).
        var path = Path.GetFullPath(KeyFilePath);
        var directory = Path.GetDirectoryName(path)!;
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(directory);
        }
        else
        {
            Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        // A temporary file left by a crash keeps whatever mode it had: start from a new one (CreateNew), then
        // replace the key file atomically.
        var temp = path + ".tmp";
        File.Delete(temp);
        using (var stream = new FileStream(temp, options))
        {
            stream.Write(JsonSerializer.SerializeToUtf8Bytes(file, LocalKeyFileContext.Default.LocalKeyFile));
            stream.Flush(flushToDisk: true);
        }

        File.Move(temp, path, overwrite: true);
    }

    private static string CreatePrivateKeyPem(string algorithm)
    {
        if (JwsAlgorithms.IsRsa(algorithm))
        {
            using var rsa = RSA.Create(2048);
            return rsa.ExportPkcs8PrivateKeyPem();
        }

        using var ecdsa = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        return ecdsa.ExportPkcs8PrivateKeyPem();
    }

    public void Dispose()
    {
        foreach (var key in _privateKeys.Values)
        {
            key.Dispose();
        }
    }

    [LoggerMessage(EventId = 4001, Level = LogLevel.Information, Message = "Loaded {Count} local development signing key(s) from {Path}.")]
    private static partial void LogLoadedKeys(ILogger logger, int count, string path);

    [LoggerMessage(EventId = 4002, Level = LogLevel.Warning, Message = "Created a local development signing key in {Path}. Never use it in production: configure Keys:KeyVaultUri.")]
    private static partial void LogCreatedKey(ILogger logger, string path);
}

internal sealed class LocalKeyFile
{
    public List<LocalKeyEntry> Keys { get; set; } = [];
}

internal sealed class LocalKeyEntry
{
    public required string Id { get; set; }
    public required string Algorithm { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset? ActivatesAt { get; set; }
    public required string PrivateKeyPem { get; set; }
}

[System.Text.Json.Serialization.JsonSerializable(typeof(LocalKeyFile))]
[System.Text.Json.Serialization.JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = System.Text.Json.Serialization.JsonKnownNamingPolicy.CamelCase)]
internal sealed partial class LocalKeyFileContext : System.Text.Json.Serialization.JsonSerializerContext;
