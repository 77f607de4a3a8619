using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;
using TokenService.Clients;
using TokenService.Configuration;
using TokenService.Endpoints;
using TokenService.Http;
using TokenService.Protocol;

namespace TokenService.TokenRequests;

/// <summary>
/// The parameters of a token request of an authenticated client, checked before anything is looked up or stored:
/// the grant type, whether the client may use it, and the grant's parameters, scope and targets. Returns the validated
/// request or the RFC 6749 §5.2 error; the subject token and the refresh token themselves are checked by the grant.
/// </summary>
public sealed class TokenRequestValidator(IOptions<TokenServiceOptions> options)
{
    // Audience of tokens for our own session endpoints (docs/api.md, "Sessions of the calling user"): only on request, see AudiencePolicy.
    private readonly string _issuer = options.Value.IssuerOrThrow;

    /// <summary>RFC 6749 §5.2: null for a grant type this endpoint serves, else the error (the parameter is required).</summary>
    public static OAuthError? ValidateGrantType(string? grantType) => grantType switch
    {
        GrantTypes.TokenExchange or GrantTypes.RefreshToken => null,
        null => new OAuthError(OAuthErrors.InvalidRequest, "grant_type is required."),
        _ => new OAuthError(OAuthErrors.UnsupportedGrantType, "Supported grants: token exchange (RFC 8693) and refresh_token."),
    };

    /// <summary>
    /// Checks a request of <paramref name="grantType"/> (one <see cref="ValidateGrantType"/> accepted).
    /// <paramref name="http"/> is read only for a spa's refresh cookie.
    /// </summary>
    public TokenRequestValidationResult Validate(string grantType, ClientRequestReader.ClientRequest request, HttpRequest http) =>
        grantType == GrantTypes.TokenExchange ? ValidateExchange(request.Client, request.Form) : ValidateRefresh(request.Client, request.Form, http);

    private TokenRequestValidationResult ValidateExchange(RegisteredClient client, IReadOnlyDictionary<string, StringValues> form)
    {
        if (client.Type is not (ClientType.Spa or ClientType.Confidential))
        {
            return TokenRequestValidationResult.Invalid(OAuthErrors.UnauthorizedClient, "This client may not obtain tokens.");
        }

        var subjectToken = FormRequest.Get(form, "subject_token");
        var subjectTokenType = FormRequest.Get(form, "subject_token_type");
        if (subjectToken is null || subjectTokenType is null)
        {
            return TokenRequestValidationResult.Invalid(OAuthErrors.InvalidRequest, "subject_token and subject_token_type are required.");
        }

        // RFC 8693 §2.2.2: an unsupported or invalid subject token is invalid_request.
        if (subjectTokenType != TokenTypes.IdToken)
        {
            return TokenRequestValidationResult.Invalid(OAuthErrors.InvalidRequest, $"subject_token_type must be {TokenTypes.IdToken}.");
        }

        if (FormRequest.Get(form, "requested_token_type") is { } requested && requested != TokenTypes.AccessToken)
        {
            return TokenRequestValidationResult.Invalid(OAuthErrors.InvalidRequest, $"Only {TokenTypes.AccessToken} can be requested.");
        }

        if (form.ContainsKey("actor_token") || form.ContainsKey("actor_token_type"))
        {
            return TokenRequestValidationResult.Invalid(OAuthErrors.InvalidRequest, "Delegation (actor_token) is not supported.");
        }

        if (ResolveScope(client, FormRequest.Get(form, "scope")) is not { } scope)
        {
            return TokenRequestValidationResult.Invalid(OAuthErrors.InvalidScope, "The requested scope is not allowed for this client.");
        }

        // RFC 8693 §2.2.2: a target the client may not obtain tokens for is invalid_target (an empty one too, here).
        var requestedAudiences = ReadRequestedAudiences(form);
        var audiences = requestedAudiences.IsAllowed ? AudiencePolicy.ForExchange(client, requestedAudiences.Audiences, _issuer) : requestedAudiences;
        if (!audiences.IsAllowed)
        {
            return TokenRequestValidationResult.Invalid(OAuthErrors.InvalidTarget, audiences.Error);
        }

        return TokenRequestValidationResult.Valid(new ValidatedExchangeRequest(client, subjectToken, scope, audiences.Audiences));
    }

    private static TokenRequestValidationResult ValidateRefresh(RegisteredClient client, IReadOnlyDictionary<string, StringValues> form, HttpRequest http)
    {
        if (client.Type is not (ClientType.Spa or ClientType.Confidential))
        {
            return TokenRequestValidationResult.Invalid(OAuthErrors.UnauthorizedClient, "This client may not refresh tokens.");
        }

        string? presented;
        if (client.Type == ClientType.Spa)
        {
            if (form.ContainsKey("refresh_token"))
            {
                return TokenRequestValidationResult.Invalid(OAuthErrors.InvalidRequest, "A spa client's refresh token travels only in the __Host-refresh_token cookie.");
            }

            presented = RefreshTokenCookie.Read(http);
        }
        else
        {
            presented = FormRequest.Get(form, "refresh_token");
        }

        if (presented is null)
        {
            return TokenRequestValidationResult.Invalid(OAuthErrors.InvalidRequest, "refresh_token is required.");
        }

        // Whether the session was granted the targets is the refresh's check (AudiencePolicy.ForRefresh); a malformed
        // request is refused here, before the refresh token is looked up.
        var requestedAudiences = ReadRequestedAudiences(form);
        if (!requestedAudiences.IsAllowed)
        {
            return TokenRequestValidationResult.Invalid(OAuthErrors.InvalidRequest, requestedAudiences.Error);
        }

        return TokenRequestValidationResult.Valid(new ValidatedRefreshRequest(client, presented, FormRequest.Get(form, "scope"), requestedAudiences.Audiences));
    }

    /// <summary>The client's whole allowed scope when none is requested; else the requested values, each allowed, each once; null when refused.</summary>
    private static string? ResolveScope(RegisteredClient client, string? requested)
    {
        if (requested is null)
        {
            return string.Join(' ', client.AllowedScopes);
        }

        var values = requested.Split(' ', StringSplitOptions.RemoveEmptyEntries).Distinct(StringComparer.Ordinal).ToList();
        return values.Count == 0 || values.Any(v => !client.AllowedScopes.Contains(v)) ? null : string.Join(' ', values);
    }

    private static AudienceDecision ReadRequestedAudiences(IReadOnlyDictionary<string, StringValues> form) =>
        AudiencePolicy.ReadRequested(form.GetValueOrDefault("audience"), form.GetValueOrDefault("resource"));
}
