using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TokenService.Configuration;
using TokenService.Validation.Jose;

namespace TokenService.Keys;

/// <summary>
/// Embedded-default signing keys: generated locally and persisted to a file (like a developer signing
/// credential) so that a restart keeps the JWKS. Never allowed in Production (the host refuses to start).
/// </summary>
public sealed partial class LocalSigningKeyService : ISigningKeyService, IDisposable
{
    private readonly KeysOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<LocalSigningKeyService> _logger;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly Dictionary<string, AsymmetricAlgorithm> _privateKeys = new(StringComparer.Ordinal);
    private SigningKeySet? _current;

    public LocalSigningKeyService(IOptions<KeysOptions> options, TimeProvider time, ILogger<LocalSigningKeyService> logger)
    {
        _options = options.Value;
        _time = time;
        _logger = logger;
    }

    public string KeyFilePath => _options.DevelopmentKeyPath ?? Path.Combine(AppContext.BaseDirectory, "tokenservice-dev-signing-keys.json");

    public async ValueTask<SigningKeySet> GetKeySetAsync(CancellationToken cancellationToken)
    {
        if (_current is { } current)
        {
            return current;
        }

        await _gate.WaitAsync(cancellationToken);
        try
        {
            return _current ??= LoadOrCreate();
        }
        finally
        {
            _gate.Release();
        }
    }

    public ValueTask<byte[]> SignAsync(SigningKey key, ReadOnlyMemory<byte> signingInput, CancellationToken cancellationToken)
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

    public async Task<KeyRotationResult> RunRotationCheckAsync(CancellationToken cancellationToken)
    {
        await GetKeySetAsync(cancellationToken);
        return new KeyRotationResult(false, "Local development key in use.");
    }

    private SigningKeySet LoadOrCreate()
    {
        var path = KeyFilePath;
        if (File.Exists(path))
        {
            var stored = JsonSerializer.Deserialize(File.ReadAllBytes(path), LocalKeyFileContext.Default.LocalKeyFile);
            if (stored is { Keys.Count: > 0 } && stored.Keys[0].Algorithm == _options.Algorithm)
            {
                var entry = stored.Keys[0];
                LogLoadedKey(_logger, path);
                return Build(entry);
            }
        }

        var created = CreateEntry(_options.Algorithm, _time.GetUtcNow());
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var json = JsonSerializer.SerializeToUtf8Bytes(new LocalKeyFile { Keys = [created] }, LocalKeyFileContext.Default.LocalKeyFile);
        File.WriteAllBytes(path, json);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }

        LogCreatedKey(_logger, path);
        return Build(created);
    }

    private SigningKeySet Build(LocalKeyEntry entry)
    {
        AsymmetricAlgorithm privateKey;
        JsonWebKey jwk;
        if (JwsAlgorithms.IsRsa(entry.Algorithm))
        {
            var rsa = RSA.Create();
            rsa.ImportFromPem(entry.PrivateKeyPem);
            jwk = JsonWebKey.FromRsa(rsa.ExportParameters(false), entry.Algorithm);
            privateKey = rsa;
        }
        else
        {
            var ecdsa = ECDsa.Create();
            ecdsa.ImportFromPem(entry.PrivateKeyPem);
            jwk = JsonWebKey.FromEc(ecdsa.ExportParameters(false), entry.Algorithm);
            privateKey = ecdsa;
        }

        _privateKeys[entry.Id] = privateKey;
        var key = new SigningKey(entry.Id, entry.Algorithm, jwk, SigningKeyState.Active, entry.CreatedAt);
        return new SigningKeySet([key], _time.GetUtcNow());
    }

    internal static LocalKeyEntry CreateEntry(string algorithm, DateTimeOffset now)
    {
        string pem;
        if (JwsAlgorithms.IsRsa(algorithm))
        {
            using var rsa = RSA.Create(2048);
            pem = rsa.ExportPkcs8PrivateKeyPem();
        }
        else
        {
            using var ecdsa = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            pem = ecdsa.ExportPkcs8PrivateKeyPem();
        }

        return new LocalKeyEntry { Id = Guid.NewGuid().ToString("N"), Algorithm = algorithm, CreatedAt = now, PrivateKeyPem = pem };
    }

    public void Dispose()
    {
        foreach (var key in _privateKeys.Values)
        {
            key.Dispose();
        }

        _gate.Dispose();
    }

    [LoggerMessage(EventId = 4001, Level = LogLevel.Information, Message = "Loaded the local development signing key from {Path}.")]
    private static partial void LogLoadedKey(ILogger logger, string path);

    [LoggerMessage(EventId = 4002, Level = LogLevel.Warning, Message = "Created a local development signing key at {Path}. Never use it in production: configure Keys:KeyVaultUri.")]
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
    public DateTimeOffset? RetiresAt { get; set; }
    public DateTimeOffset? RemoveAt { get; set; }
    public required string PrivateKeyPem { get; set; }
}

[System.Text.Json.Serialization.JsonSerializable(typeof(LocalKeyFile))]
[System.Text.Json.Serialization.JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = System.Text.Json.Serialization.JsonKnownNamingPolicy.CamelCase)]
internal sealed partial class LocalKeyFileContext : System.Text.Json.Serialization.JsonSerializerContext;
