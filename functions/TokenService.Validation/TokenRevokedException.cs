using Microsoft.IdentityModel.Tokens;

namespace TokenService.Validation;

/// <summary>A validated token whose session ended or whose jti is denied at the token service.</summary>
public sealed class TokenRevokedException(string message) : SecurityTokenException(message)
{
    public TokenRevokedException()
        : this("The token has been revoked.")
    {
    }

    public TokenRevokedException(string message, Exception innerException)
        : this(message + " " + innerException.Message)
    {
    }
}
