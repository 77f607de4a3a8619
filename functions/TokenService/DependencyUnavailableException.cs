namespace TokenService;

/// <summary>
/// A dependency (Table Storage, Key Vault, the IdP's JWKS) is unreachable, throttling or timing out.
/// Endpoints answer 503 with <c>Retry-After</c> and change nothing: faults fail closed, never open.
/// </summary>
public sealed class DependencyUnavailableException : Exception
{
    public DependencyUnavailableException(string dependency, string message, TimeSpan? retryAfter = null, Exception? innerException = null)
        : base(message, innerException)
    {
        Dependency = dependency;
        RetryAfter = retryAfter;
    }

    public DependencyUnavailableException()
        : this("unknown", "A dependency is unavailable.")
    {
    }

    public DependencyUnavailableException(string message)
        : this("unknown", message)
    {
    }

    public DependencyUnavailableException(string message, Exception innerException)
        : this("unknown", message, null, innerException)
    {
    }

    /// <summary>"storage", "keyvault", "idp" …: used in logs and health output, never shown with details to clients.</summary>
    public string Dependency { get; }

    /// <summary>The delay the dependency asked for, when it said (for example a 429's Retry-After).</summary>
    public TimeSpan? RetryAfter { get; }
}
