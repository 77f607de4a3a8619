namespace TokenService.Validation.Jose;

/// <summary>Finds the public key for a <c>kid</c>. Implementations cache; a warm lookup completes synchronously.</summary>
public interface IVerificationKeyResolver
{
    /// <summary>
    /// Returns the key for <paramref name="kid"/> (or the only key when <paramref name="kid"/> is null and
    /// exactly one is known), or a failure saying whether the key is unknown or the key source is unreachable.
    /// </summary>
    ValueTask<KeyResolution> ResolveAsync(string? kid, CancellationToken cancellationToken);
}

public readonly record struct KeyResolution(VerificationKey? Key, bool SourceUnavailable)
{
    public static KeyResolution Found(VerificationKey key) => new(key, false);
    public static readonly KeyResolution Unknown = new(null, false);
    public static readonly KeyResolution Unavailable = new(null, true);
}
