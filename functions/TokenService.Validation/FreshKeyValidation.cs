using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Http;
using Microsoft.IdentityModel.Tokens;

namespace TokenService.Validation;

/// <summary>
/// The second validation of a token whose <c>kid</c> is not in the scheme's cached JWKS: as JwtBearer validates it, but
/// with the keys of a fetch made now (<see cref="SigningKeyRefetcher"/>), and on success with <c>OnTokenValidated</c>
/// (the application's handler, the DPoP binding and the session check) run before the request is authenticated.
/// </summary>
internal sealed class FreshKeyValidation(SigningKeyRefetcher keys)
{
    // Where OnMessageReceived leaves the token JwtBearer will validate, for a second validation with fresh keys.
    private static readonly object RawTokenItem = new();

    /// <summary>Remembers the token an event or the DPoP scheme set for this request (JwtBearer does not keep it).</summary>
    public static void Remember(MessageReceivedContext context)
    {
        if (context.Token is { } token)
        {
            context.HttpContext.Items[RawTokenItem] = token;
        }
    }

    /// <summary>
    /// Whether the request's token can be validated again with fresh keys: the scheme reads the token service's metadata
    /// (a configuration manager and a metadata address to refetch from) and the token of this request is known.
    /// </summary>
    public static bool Applies(AuthenticationFailedContext context, out string token)
    {
        token = string.Empty;
        if (context.Options.ConfigurationManager is null || string.IsNullOrEmpty(context.Options.MetadataAddress) || RawToken(context.HttpContext) is not { } raw)
        {
            return false;
        }

        token = raw;
        return true;
    }

    /// <summary>
    /// Validates <paramref name="token"/> again with freshly fetched keys. Keys that cannot be fetched fail it closed
    /// (503); a kid the fresh keys lack either keeps JwtBearer's 401.
    /// </summary>
    public async Task ValidateAsync(AuthenticationFailedContext context, string token)
    {
        var options = context.Options;
        var (fresh, issuer) = await keys.GetAsync(options, context.HttpContext.RequestAborted);
        if (fresh is null)
        {
            context.Fail(new TokenStatusUnavailableException("The token service's keys cannot be fetched.", context.Exception));
            return;
        }

        // As JwtBearer builds its parameters from a configuration: the scheme's own keys and issuers plus the metadata's.
        var parameters = options.TokenValidationParameters.Clone();
        parameters.ConfigurationManager = null;
        parameters.IssuerSigningKeys = parameters.IssuerSigningKeys is { } own ? [.. own, .. fresh] : fresh;
        if (!string.IsNullOrEmpty(issuer))
        {
            parameters.ValidIssuers = parameters.ValidIssuers is { } issuers ? [.. issuers, issuer] : [issuer];
        }

        TokenValidationResult? result = null;
        foreach (var handler in options.TokenHandlers)
        {
            result = await handler.ValidateTokenAsync(token, parameters);
            if (result.IsValid)
            {
                break;
            }
        }

        if (result is not { IsValid: true })
        {
            if (result?.Exception is { } failure and not SecurityTokenSignatureKeyNotFoundException)
            {
                context.Fail(failure);
            }

            return;
        }

        await AuthenticateAsync(context, token, result);
    }

    /// <summary>The token of this request: as an event or the DPoP scheme set it, else JwtBearer's own "Bearer" reading.</summary>
    private static string? RawToken(HttpContext context)
    {
        if (context.Items.TryGetValue(RawTokenItem, out var stored) && stored is string token)
        {
            return token;
        }

        var header = context.Request.Headers.Authorization;
        return header.Count == 1 && header[0] is { Length: > 7 } value && value.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)
            && value[7..].Trim() is { Length: > 0 } bearer ? bearer : null;
    }

    // What JwtBearerHandler does after a token validated: OnTokenValidated, then its outcome or the principal.
    private static async Task AuthenticateAsync(AuthenticationFailedContext context, string token, TokenValidationResult result)
    {
        var options = context.Options;
        var validated = new TokenValidatedContext(context.HttpContext, context.Scheme, options)
        {
            Principal = new System.Security.Claims.ClaimsPrincipal(result.ClaimsIdentity),
            SecurityToken = result.SecurityToken,
        };
        if (result.SecurityToken.ValidTo != DateTime.MinValue)
        {
            validated.Properties.ExpiresUtc = new DateTimeOffset(DateTime.SpecifyKind(result.SecurityToken.ValidTo, DateTimeKind.Utc));
        }

        if (result.SecurityToken.ValidFrom != DateTime.MinValue)
        {
            validated.Properties.IssuedUtc = new DateTimeOffset(DateTime.SpecifyKind(result.SecurityToken.ValidFrom, DateTimeKind.Utc));
        }

        await options.Events.TokenValidated(validated);
        if (validated.Result is { } outcome)
        {
            if (outcome.Succeeded)
            {
                context.Principal = outcome.Principal;
                context.Properties = outcome.Properties;
                context.Success();
            }
            else if (outcome.Failure is { } refused)
            {
                context.Fail(refused);
            }
            else
            {
                context.NoResult();
            }

            return;
        }

        if (options.SaveToken)
        {
            validated.Properties.StoreTokens([new AuthenticationToken { Name = "access_token", Value = token }]);
        }

        context.Principal = validated.Principal;
        context.Properties = validated.Properties;
        context.Success();
    }
}
