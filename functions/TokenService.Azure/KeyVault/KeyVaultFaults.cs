namespace TokenService.Azure.KeyVault;

/// <summary>What a Key Vault error answer means to the signing services (docs/key-vault.md, "Key Vault errors").</summary>
internal enum KeyVaultFault
{
    /// <summary>
    /// The key version named is gone: 403 <c>KeyDisabled</c> on sign or get (revoked through another instance), or 404 on
    /// sign (deleted). This instance's key set is stale: a sign reloads it and signs with the current key; a get skips it.
    /// </summary>
    KeyGone,

    /// <summary>Any other 403: the app's identity may not do this (role, access policy, network rule).</summary>
    AccessDenied,

    /// <summary>
    /// Everything else (400, 404 other than on sign, 409, 401 after the challenge …): nothing this request can fix, and
    /// never a reason to sign elsewhere than the vault. It fails closed as an unavailable dependency (503 with
    /// Retry-After), not as an unexpected error (500).
    /// </summary>
    Unavailable,
}

/// <summary>The one classification of Key Vault errors: <see cref="KeyVaultSigningKeyService"/> applies it to every call.</summary>
internal static class KeyVaultFaults
{
    public static KeyVaultFault Classify(KeyVaultException error) => error switch
    {
        { IsKeyDisabled: true, Operation: "sign" or "get" } => KeyVaultFault.KeyGone,
        { Status: 404, Operation: "sign" } => KeyVaultFault.KeyGone,
        { IsAccessDenied: true } => KeyVaultFault.AccessDenied,
        _ => KeyVaultFault.Unavailable,
    };

    public static bool IsKeyGone(KeyVaultException error) => Classify(error) == KeyVaultFault.KeyGone;

    /// <summary>An error classified <see cref="KeyVaultFault.Unavailable"/>, as the 503 it is answered with.</summary>
    public static DependencyUnavailableException Unavailable(KeyVaultException error, string operation) =>
        new("keyvault", $"Key Vault answered {error.Status} {error.ErrorCode ?? "(no error code)"} to {error.Operation ?? operation}.", null, error);
}
