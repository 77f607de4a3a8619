namespace TokenService.Validation;

/// <summary>The token's status (or the token service's metadata) cannot be learned right now: fail closed with 503.</summary>
public sealed class TokenStatusUnavailableException : Exception
{
    public TokenStatusUnavailableException()
        : this("The token's status cannot be learned right now.")
    {
    }

    public TokenStatusUnavailableException(string message)
        : base(message)
    {
    }

    public TokenStatusUnavailableException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
