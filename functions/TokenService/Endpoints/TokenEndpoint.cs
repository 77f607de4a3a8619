using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TokenService.Clients;
using TokenService.Configuration;
using TokenService.Diagnostics;
using TokenService.Http;
using TokenService.Idp;
using TokenService.Protocol;
using TokenService.Sessions;
using TokenService.Tokens;

namespace TokenService.Endpoints;

/// <summary>
/// <c>POST /oauth2/token</c>: RFC 8693 token exchange (an IdP ID token opens a session) and RFC 6749 §6
/// refresh with rotation. Errors are RFC 6749 §5.2 JSON; every response is <c>no-store</c>.
/// </summary>
public sealed partial class TokenEndpoint(
    ClientRequestReader reader,
    IdTokenValidator idTokens,
    IIdTokenReplayCache replayCache,
    SessionService sessions,
    AccessTokenIssuer accessTokens,
    DpopRequestReader dpop,
    TimeProvider time,
    IOptions<TokenServiceOptions> options,
    ILogger<TokenEndpoint> logger)
{
    // Audience of tokens for our own session endpoints (CONTRACT §2): only on request, see TryResolveAudiences.
    private readonly string _issuer = options.Value.IssuerOrThrow;

    public Task HandleAsync(HttpContext context) => EndpointInvoker.InvokeAsync(context, oauthErrors: true, HandleCoreAsync);

    private async Task HandleCoreAsync(HttpContext context)
    {
        if (await reader.ReadAsync(context, "token", RateLimitedRoute.Token, browserFacing: true) is not { } request)
        {
            return;
        }

        var grantType = FormRequest.Get(request.Form, "grant_type");

        // RFC 9449 §5: a DPoP proof is checked before anything else of a grant, so that a refused proof changes nothing
        // (no ID token marked as used, no rotation). A valid proof's key binds the tokens the grant issues.
        if (grantType is GrantTypes.TokenExchange or GrantTypes.RefreshToken && !await dpop.CheckTokenRequestAsync(context, request.Client.RequireDpop))
        {
            return;
        }

        switch (grantType)
        {
            case GrantTypes.TokenExchange:
                await TokenServiceDiagnostics.TraceAsync(TokenServiceDiagnostics.Spans.TokenExchange, context, request.Client.ClientId, (this, context, request), static s => s.Item1.ExchangeAsync(s.context, s.request));
                break;
            case GrantTypes.RefreshToken:
                await TokenServiceDiagnostics.TraceAsync(TokenServiceDiagnostics.Spans.Refresh, context, request.Client.ClientId, (this, context, request), static s => s.Item1.RefreshAsync(s.context, s.request));
                break;
            case null:
                await OAuthResponses.WriteErrorAsync(context, 400, OAuthErrors.InvalidRequest, "grant_type is required.");
                break;
            default:
                await OAuthResponses.WriteErrorAsync(context, 400, OAuthErrors.UnsupportedGrantType, "Supported grants: token exchange (RFC 8693) and refresh_token.");
                break;
        }
    }

    private async Task ExchangeAsync(HttpContext context, ClientRequestReader.ClientRequest request)
    {
        var client = request.Client;
        if (client.Type is not (ClientType.Spa or ClientType.Confidential))
        {
            await OAuthResponses.WriteErrorAsync(context, 400, OAuthErrors.UnauthorizedClient, "This client may not obtain tokens.");
            return;
        }

        var form = request.Form;
        var subjectToken = FormRequest.Get(form, "subject_token");
        var subjectTokenType = FormRequest.Get(form, "subject_token_type");
        if (subjectToken is null || subjectTokenType is null)
        {
            await OAuthResponses.WriteErrorAsync(context, 400, OAuthErrors.InvalidRequest, "subject_token and subject_token_type are required.");
            return;
        }

        // RFC 8693 §2.2.2: an unsupported or invalid subject token is invalid_request.
        if (subjectTokenType != TokenTypes.IdToken)
        {
            await OAuthResponses.WriteErrorAsync(context, 400, OAuthErrors.InvalidRequest, $"subject_token_type must be {TokenTypes.IdToken}.");
            return;
        }

        if (FormRequest.Get(form, "requested_token_type") is { } requested && requested != TokenTypes.AccessToken)
        {
            await OAuthResponses.WriteErrorAsync(context, 400, OAuthErrors.InvalidRequest, $"Only {TokenTypes.AccessToken} can be requested.");
            return;
        }

        if (form.ContainsKey("actor_token") || form.ContainsKey("actor_token_type"))
        {
            await OAuthResponses.WriteErrorAsync(context, 400, OAuthErrors.InvalidRequest, "Delegation (actor_token) is not supported.");
            return;
        }

        if (!TryResolveScope(client, FormRequest.Get(form, "scope"), out var scope, out var scopeError))
        {
            await OAuthResponses.WriteErrorAsync(context, 400, OAuthErrors.InvalidScope, scopeError);
            return;
        }

        if (!TryResolveAudiences(client, form, _issuer, out var audiences, out var audienceError))
        {
            await OAuthResponses.WriteErrorAsync(context, 400, OAuthErrors.InvalidTarget, audienceError);
            return;
        }

        // The ID token must have been issued to this client's application at the IdP (Clients:N:IdpAudience).
        var validation = await idTokens.ValidateAsync(subjectToken, client.IdpAudience, context.RequestAborted);
        if (!validation.IsValid)
        {
            if (validation.Error == Jwt.JwtValidationError.KeysUnavailable)
            {
                throw new DependencyUnavailableException("idp", "The IdP's keys cannot be fetched.");
            }

            LogIdTokenRejected(logger, client.ClientId, validation.Error.ToString());
            TokenServiceMetrics.IdTokenRejected(client.ClientId, validation.Error.ToString());
            await OAuthResponses.WriteErrorAsync(context, 400, OAuthErrors.InvalidRequest, "The subject_token is not a valid ID token: " + validation.Description);
            return;
        }

        var idToken = validation.Token!;
        if (!await replayCache.TryAddAsync(idToken.ReplayKey, idToken.ExpiresAt, context.RequestAborted))
        {
            LogIdTokenReplayed(logger, client.ClientId);
            TokenServiceMetrics.IdTokenRejected(client.ClientId, "Replayed");
            await OAuthResponses.WriteErrorAsync(context, 400, OAuthErrors.InvalidRequest, "The subject_token has already been exchanged.");
            return;
        }

        SessionRecord session;
        string refreshToken;
        IssuedAccessToken accessToken;
        try
        {
            var payload = idToken.Payload;
            (session, refreshToken, accessToken) = await sessions.OpenAsync(
                new OpenSessionRequest(
                    idToken.UserId, payload.Subject!, client.ClientId, scope, audiences,
                    payload.AuthTime is { } authTime ? DateTimeOffset.FromUnixTimeSeconds(authTime) : null,
                    payload.Acr, payload.Amr, DpopRequestReader.ProofKey(context),
                    // What the user will recognise the session by on the sessions page; the header itself is not kept.
                    UserAgentLabel.Describe(context.Request.Headers.UserAgent.ToString())),
                (opened, grantedScope, ct) => accessTokens.IssueAsync(opened with { Audiences = TokenAudiences(opened.Audiences, _issuer) }, grantedScope, ct, opened.DpopJkt),
                context.RequestAborted);
        }
        catch (Exception ex) when (ex is DependencyUnavailableException or OperationCanceledException)
        {
            // Nothing was opened: let the same ID token be tried again (best effort; the store may be down).
            await ForgetReplayMarkerAsync(idToken.ReplayKey);
            throw;
        }

        TokenServiceMetrics.Issued(client.ClientId);
        await WriteTokenResponseAsync(context, client, accessToken, refreshToken, session, exchange: true);
    }

    private async Task ForgetReplayMarkerAsync(string replayKey)
    {
        try
        {
            await replayCache.RemoveAsync(replayKey, CancellationToken.None);
        }
        catch (DependencyUnavailableException)
        {
            // The marker stays; the user signs in at the IdP again.
        }
    }

    private async Task RefreshAsync(HttpContext context, ClientRequestReader.ClientRequest request)
    {
        var client = request.Client;
        if (client.Type is not (ClientType.Spa or ClientType.Confidential))
        {
            await OAuthResponses.WriteErrorAsync(context, 400, OAuthErrors.UnauthorizedClient, "This client may not refresh tokens.");
            return;
        }

        string? presented;
        if (client.Type == ClientType.Spa)
        {
            if (request.Form.ContainsKey("refresh_token"))
            {
                await OAuthResponses.WriteErrorAsync(context, 400, OAuthErrors.InvalidRequest, "A spa client's refresh token travels only in the __Host-refresh_token cookie.");
                return;
            }

            presented = RefreshTokenCookie.Read(context.Request);
        }
        else
        {
            presented = FormRequest.Get(request.Form, "refresh_token");
        }

        if (presented is null)
        {
            await OAuthResponses.WriteErrorAsync(context, 400, OAuthErrors.InvalidRequest, "refresh_token is required.");
            return;
        }

        if (!TryReadRequestedAudiences(request.Form, out var requestedAudiences, out var requestError))
        {
            await OAuthResponses.WriteErrorAsync(context, 400, OAuthErrors.InvalidRequest, requestError);
            return;
        }

        // RFC 8707 §2.2: a refresh may ask for a token for a subset of the session's audiences. The check runs on the
        // session the rotation would store and before anything is stored, so a refused target changes nothing.
        string? targetError = null;
        RefreshOutcome outcome;
        try
        {
            outcome = await sessions.RefreshAsync(presented, client.ClientId, FormRequest.Get(request.Form, "scope"), DpopRequestReader.ProofKey(context), (rotated, grantedScope, ct) =>
                TryNarrowAudiences(rotated.Audiences, requestedAudiences, _issuer, out var tokenAudiences, out targetError)
                    ? accessTokens.IssueAsync(rotated with { Audiences = tokenAudiences }, grantedScope, ct, DpopRequestReader.ProofKey(context))
                    : throw new InvalidTargetException(), context.RequestAborted);
        }
        catch (InvalidTargetException)
        {
            await OAuthResponses.WriteErrorAsync(context, 400, OAuthErrors.InvalidTarget, targetError ?? "The requested audience is not granted to this session.");
            return;
        }

        if (outcome.Status == RefreshStatus.InvalidScope)
        {
            await OAuthResponses.WriteErrorAsync(context, 400, OAuthErrors.InvalidScope, outcome.Description);
            return;
        }

        if (outcome.Status == RefreshStatus.ProofKeyMismatch)
        {
            // RFC 9449 §5: the grant (the key-bound refresh token) is not usable without its key. The cookie stays:
            // the session is untouched, and the page that holds the key can still refresh.
            await OAuthResponses.WriteErrorAsync(context, 400, OAuthErrors.InvalidGrant, outcome.Description);
            return;
        }

        if (outcome.Status != RefreshStatus.Success)
        {
            if (client.Type == ClientType.Spa)
            {
                RefreshTokenCookie.Clear(context.Response);
            }

            await OAuthResponses.WriteErrorAsync(context, 400, OAuthErrors.InvalidGrant, outcome.Description);
            return;
        }

        TokenServiceMetrics.Refreshed(client.ClientId);
        await WriteTokenResponseAsync(context, client, outcome.AccessToken!.Value, outcome.RefreshToken!, outcome.Session!, exchange: false);
    }

    private Task WriteTokenResponseAsync(HttpContext context, RegisteredClient client, IssuedAccessToken accessToken, string refreshToken, SessionRecord session, bool exchange)
    {
        if (client.Type == ClientType.Spa)
        {
            RefreshTokenCookie.Set(context.Response, refreshToken, session.RefreshTokenExpiresAt - time.GetUtcNow());
        }

        return OAuthResponses.WriteJsonAsync(context, 200, writer =>
        {
            writer.WriteString("access_token", accessToken.Token);
            // RFC 9449 §5: token_type DPoP tells the client the access token is bound to its key (cnf.jkt).
            writer.WriteString("token_type", DpopRequestReader.ProofKey(context) is null ? "Bearer" : "DPoP");
            writer.WriteNumber("expires_in", accessToken.ExpiresIn);
            writer.WriteString("scope", accessToken.Scope);
            if (client.Type != ClientType.Spa)
            {
                writer.WriteString("refresh_token", refreshToken);
            }

            if (exchange)
            {
                writer.WriteString("issued_token_type", TokenTypes.AccessToken);
            }
        });
    }

    private static bool TryResolveScope(RegisteredClient client, string? requested, out string scope, out string error)
    {
        error = string.Empty;
        if (requested is null)
        {
            scope = string.Join(' ', client.AllowedScopes);
            return true;
        }

        var values = Split(requested);
        var unknown = values.FirstOrDefault(v => !client.AllowedScopes.Contains(v));
        if (unknown is not null || values.Count == 0)
        {
            scope = string.Empty;
            error = "The requested scope is not allowed for this client.";
            return false;
        }

        scope = string.Join(' ', values);
        return true;
    }

    /// <summary>
    /// RFC 8693 §2.1 <c>audience</c> / RFC 8707 <c>resource</c>: each requested value must be allowed for the client.
    /// The token service's own audience (its issuer, which the session endpoints require) is special: a client gets
    /// it only when it is listed in the client's AllowedAudiences and only on explicit request. The session may then
    /// hold it besides APIs; <see cref="TokenAudiences"/> keeps it out of any token that is also for an API.
    /// </summary>
    private static bool TryResolveAudiences(RegisteredClient client, IReadOnlyDictionary<string, Microsoft.Extensions.Primitives.StringValues> form, string issuer, out IReadOnlyList<string> audiences, out string error)
    {
        if (!TryReadRequestedAudiences(form, out var requested, out error))
        {
            audiences = [];
            return false;
        }

        if (requested.Count == 0)
        {
            // The default is every API the client may call, never the token service itself.
            var apis = client.AllowedAudiences.Where(a => a != issuer).ToList();
            audiences = apis.Count > 0 ? apis : [client.ClientId];
            return true;
        }

        // RFC 8693 §2.2.2: a target the client may not obtain tokens for is invalid_target.
        if (requested.Any(a => !client.AllowedAudiences.Contains(a)))
        {
            audiences = [];
            error = "The requested audience is not allowed for this client.";
            return false;
        }

        audiences = requested;
        return true;
    }

    /// <summary>
    /// The audiences of one access token of a session. A session may be granted the token service's own audience
    /// (its issuer) besides APIs, but no single token carries both: a token for both an API and the session
    /// endpoints would let that API list and end the user's sessions (RFC 9700 §2.3, RFC 8725 §3.9). By default a
    /// token is for the APIs; a refresh asks for the issuer alone (RFC 8707 §2.2) to get a token for /sessions.
    /// </summary>
    private static IReadOnlyList<string> TokenAudiences(IReadOnlyList<string> granted, string issuer) =>
        granted.Count > 1 && granted.Contains(issuer) ? granted.Where(a => a != issuer).ToList() : granted;

    private static bool TryNarrowAudiences(IReadOnlyList<string> granted, IReadOnlyList<string> requested, string issuer, out IReadOnlyList<string> audiences, out string? error)
    {
        error = null;
        if (requested.Count == 0)
        {
            audiences = TokenAudiences(granted, issuer);
            return true;
        }

        audiences = [];
        if (requested.Any(a => !granted.Contains(a)))
        {
            error = "The requested audience was not granted to this session.";
            return false;
        }

        if (requested.Count > 1 && requested.Contains(issuer))
        {
            error = "A token for the token service's own endpoints (audience = its issuer) must be requested alone.";
            return false;
        }

        audiences = requested;
        return true;
    }

    /// <summary>The <c>audience</c> and <c>resource</c> values of a token request, each once; an empty value is an error.</summary>
    private static bool TryReadRequestedAudiences(IReadOnlyDictionary<string, Microsoft.Extensions.Primitives.StringValues> form, out IReadOnlyList<string> requested, out string error)
    {
        var values = new List<string>();
        error = string.Empty;
        foreach (var name in (string[])["audience", "resource"])
        {
            if (form.TryGetValue(name, out var given))
            {
                foreach (var value in given)
                {
                    if (string.IsNullOrEmpty(value))
                    {
                        requested = [];
                        error = $"An empty {name} parameter is not allowed.";
                        return false;
                    }

                    if (!values.Contains(value))
                    {
                        values.Add(value);
                    }
                }
            }
        }

        requested = values;
        return true;
    }

    /// <summary>Thrown by the refresh's token factory, before anything is stored, for a target the session was not granted.</summary>
    private sealed class InvalidTargetException : Exception
    {
    }

    private static List<string> Split(string scope) =>
        scope.Split(' ', StringSplitOptions.RemoveEmptyEntries).Distinct(StringComparer.Ordinal).ToList();

    [LoggerMessage(EventId = 1101, Level = LogLevel.Information, Message = "ID token from client {ClientId} rejected: {Reason}.")]
    private static partial void LogIdTokenRejected(ILogger logger, string clientId, string reason);

    [LoggerMessage(EventId = 1102, Level = LogLevel.Warning, Message = "Replayed ID token refused (client {ClientId}).")]
    private static partial void LogIdTokenReplayed(ILogger logger, string clientId);
}
