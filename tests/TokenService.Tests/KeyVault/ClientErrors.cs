using TokenService.Azure.KeyVault;

namespace TokenService.Tests.KeyVault;

/// <summary>
/// The keys client fails as Azure.Security.KeyVault.Keys does (Azure.Core's <c>RequestFailedException</c> and transport
/// exceptions); the signing service reads that through <see cref="KeyVaultErrors"/>. Client tests assert both.
/// </summary>
internal static class ClientErrors
{
    /// <summary>The exception the signing service makes of what <paramref name="call"/> threw, which must be an Azure.Core one.</summary>
    public static async Task<T> TranslatedAsync<T>(Func<Task> call, string operation, TokenService.Diagnostics.TokenServiceMetrics? metrics = null)
        where T : Exception
    {
        var thrown = await Assert.ThrowsAnyAsync<Exception>(call);
        Assert.True(KeyVaultErrors.IsClientError(thrown, CancellationToken.None), $"the client threw {thrown.GetType().Name}, not an Azure.Core exception");
        return Assert.IsType<T>(KeyVaultErrors.Translate(thrown, operation, metrics));
    }
}
