using Azure;

namespace TokenService.Azure.KeyVault;

/// <summary>
/// A Key Vault error that is not an outage (bad request, forbidden, conflict), as the signing service reads the client's
/// <see cref="RequestFailedException"/> (<see cref="KeyVaultErrors"/>): <see cref="Status"/> and <see cref="ErrorCode"/>,
/// the innermost code of Key Vault's error envelope (<c>error.innererror.code</c>: <c>KeyDisabled</c>,
/// <c>ForbiddenByRbac</c>, <c>ForbiddenByPolicy</c> …) when there is one, else <c>error.code</c>, as the Azure SDK reports
/// it; <see cref="Code"/>, the outer code, and <see cref="Operation"/>. <see cref="KeyVaultFaults"/> classifies it.
/// </summary>
public sealed class KeyVaultException : Exception
{
    public KeyVaultException(int status, string? code, string message, string? errorCode = null, string? operation = null, Exception? innerException = null)
        : base(message, innerException)
    {
        Status = status;
        Code = code;
        ErrorCode = errorCode ?? code;
        Operation = operation;
    }

    public KeyVaultException()
        : this(0, null, "Key Vault request failed.")
    {
    }

    public KeyVaultException(string message)
        : this(0, null, message)
    {
    }

    public KeyVaultException(string message, Exception innerException)
        : this(0, null, message, innerException: innerException)
    {
    }

    public int Status { get; }

    /// <summary>The outer <c>error.code</c> (a 403 is always "Forbidden").</summary>
    public string? Code { get; }

    /// <summary>The innermost error code: what the error is (<c>KeyDisabled</c>, <c>ForbiddenByRbac</c> …).</summary>
    public string? ErrorCode { get; }

    /// <summary>The client operation that failed: create, get, list, update or sign.</summary>
    public string? Operation { get; }

    /// <summary>A sign (or get) on a disabled key version: the key was revoked or removed, not a fault of the vault.</summary>
    public bool IsKeyDisabled => Status == 403 && string.Equals(ErrorCode, KeyVaultErrorCodes.KeyDisabled, StringComparison.Ordinal);

    /// <summary>A 403 that is not about the key: the caller's identity may not do this (role, access policy, network rule).</summary>
    public bool IsAccessDenied => Status == 403 && !IsKeyDisabled;
}

/// <summary>Key Vault's inner error codes the service acts on (Key Vault REST reference, "Common error codes").</summary>
public static class KeyVaultErrorCodes
{
    public const string KeyDisabled = "KeyDisabled";
    public const string ForbiddenByRbac = "ForbiddenByRbac";
    public const string ForbiddenByPolicy = "ForbiddenByPolicy";
    public const string Throttled = "Throttled";
}
