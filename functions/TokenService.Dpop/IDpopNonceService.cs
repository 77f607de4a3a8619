namespace TokenService.Dpop;

/// <summary>Server-provided DPoP nonces (RFC 9449 §8 and §9): issued in <c>DPoP-Nonce</c>, checked in proofs.</summary>
public interface IDpopNonceService
{
    /// <summary>A fresh nonce (RFC 9449 §8.1 syntax: NQCHARs only).</summary>
    string Issue();

    /// <summary>True when <paramref name="nonce"/> was issued by any instance sharing the secret and is not yet stale.</summary>
    bool IsValid(string? nonce);
}
