using System.Collections.Concurrent;

namespace TokenService.Keys;

/// <summary>
/// Problems of the signing key provider that no retry fixes: a missing role or access policy on a vault (Key Vault
/// 403 <c>ForbiddenByRbac</c>, <c>ForbiddenByPolicy</c> …). The provider reports one line per vault and operation, and
/// clears it once that operation succeeds again; <c>/healthz</c> shows the lines, so that an operator reads what to
/// grant instead of a generic "unavailable".
/// </summary>
public sealed class SigningKeyHealth
{
    private readonly ConcurrentDictionary<string, string> _problems = new(StringComparer.Ordinal);

    /// <summary>The current problems, one line each, in a stable order.</summary>
    public IReadOnlyList<string> Problems => [.. _problems.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => p.Value)];

    /// <summary>Records (or replaces) the problem of <paramref name="source"/> (e.g. a vault and an operation).</summary>
    public void Report(string source, string problem) => _problems[source] = problem;

    /// <summary>The problem of <paramref name="source"/> is gone (its operation succeeded); true when one was recorded.</summary>
    public bool Clear(string source) => _problems.TryRemove(source, out _);
}
