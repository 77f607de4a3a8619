using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TokenService.Configuration;
using TokenService.Diagnostics;
using TokenService.Http;
using TokenService.Idp;
using TokenService.Protocol;
using TokenService.Sessions;
using TokenService.TokenRequests;
using TokenService.Tokens;

namespace TokenService.Endpoints;

/// <summary>
/// <c>POST /oauth2/token</c>: RFC 8693 token exchange (an IdP ID token opens a session) and RFC 6749 §6
/// refresh with rotation. Errors are RFC 6749 §5.2 JSON; every response is <c>no-store</c>.
/// Each request goes the same way: check the HTTP request and authenticate the client (<see cref="ClientRequestReader"/>),
/// check the DPoP proof, validate the parameters (<see cref="TokenRequestValidator"/>), act (the exchange or the
/// refresh, in the partial files beside this one), respond (<see cref="TokenResponseWriter"/>).
/// </summary>
public sealed partial class TokenEndpoint(
    ClientRequestReader reader,
    TokenRequestValidator validator,
    IdTokenValidator idTokens,
    SessionService sessions,
    AccessTokenIssuer accessTokens,
    DpopRequestReader dpop,
    TokenResponseWriter responses,
    IOptions<TokenServiceOptions> options,
    TokenServiceMetrics metrics,
    ILogger<TokenEndpoint> logger)
{
    // Audience of tokens for our own session endpoints (docs/api.md, "Sessions of the calling user"): only on request, see AudiencePolicy.
    private readonly string _issuer = options.Value.IssuerOrThrow;

    public Task HandleAsync(HttpContext context) => EndpointInvoker.InvokeAsync(context, oauthErrors: true, HandleCoreAsync);

    private async Task HandleCoreAsync(HttpContext context)
    {
        // Method, CORS, form, client authentication and the route's request limits.
        if (await reader.ReadAsync(context, "token", RateLimitedRoute.Token, browserFacing: true) is not { } request)
        {
            return;
        }

        var grantType = FormRequest.Get(request.Form, "grant_type");
        if (TokenRequestValidator.ValidateGrantType(grantType) is { } grantError)
        {
            await TokenResponseWriter.WriteErrorAsync(context, grantError);
            return;
        }

        // RFC 9449 §5: a DPoP proof is checked before anything else of a grant, so that a refused proof changes nothing
        // (no ID token marked as used, no rotation). A valid proof's key binds the tokens the grant issues.
        if (!await dpop.CheckTokenRequestAsync(context, request.Client.RequireDpop))
        {
            return;
        }

        var span = grantType == GrantTypes.TokenExchange ? TokenServiceDiagnostics.Spans.TokenExchange : TokenServiceDiagnostics.Spans.Refresh;
        await TokenServiceDiagnostics.TraceAsync(span, context, request.Client.ClientId, (this, context, request, grantType!), static s => s.Item1.GrantAsync(s.context, s.request, s.Item4));
    }

    /// <summary>Validate, act, respond: the part of a request its span covers.</summary>
    private async Task GrantAsync(HttpContext context, ClientRequestReader.ClientRequest request, string grantType)
    {
        var validation = validator.Validate(grantType, request, context.Request);
        if (validation.IsError)
        {
            await TokenResponseWriter.WriteErrorAsync(context, validation.Error.Value);
            return;
        }

        var result = validation.Request switch
        {
            ValidatedExchangeRequest exchange => await ExchangeAsync(context, exchange),
            ValidatedRefreshRequest refresh => await RefreshAsync(context, refresh),
            _ => throw new InvalidOperationException("Unknown validated token request."),
        };
        await responses.WriteAsync(context, result);
    }

    [LoggerMessage(EventId = 1101, Level = LogLevel.Information, Message = "ID token from client {ClientId} rejected: {Reason}.")]
    private static partial void LogIdTokenRejected(ILogger logger, string clientId, string reason);

    [LoggerMessage(EventId = 1102, Level = LogLevel.Warning, Message = "Replayed ID token refused (client {ClientId}).")]
    private static partial void LogIdTokenReplayed(ILogger logger, string clientId);
}
