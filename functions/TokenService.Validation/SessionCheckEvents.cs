using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Http;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Microsoft.Net.Http.Headers;
using TokenService.Jose;

namespace TokenService.Validation;

/// <summary>
/// One JwtBearer scheme's events with the session check added: each event runs the application's own events first
/// (what <see cref="JwtBearerOptions.Events"/> held), then ours, then the handlers set
/// on this object afterwards (a later <c>PostConfigure</c> that chains <c>OnTokenValidated</c>, for instance).
/// Wrapping the application's events, not replacing their delegates, also runs the overrides of an events subclass.
/// </summary>
internal sealed class SessionCheckEvents(
    JwtBearerEvents application,
    SessionCheckOptions check,
    SessionStatusChecker checker,
    DpopBinding dpop,
    FreshKeyValidation freshKeys) : JwtBearerEvents
{
    public override async Task MessageReceived(MessageReceivedContext context)
    {
        await application.MessageReceived(context);
        DpopBinding.ReadDpopScheme(context);
        FreshKeyValidation.Remember(context);
        await base.MessageReceived(context);
    }

    public override async Task TokenValidated(TokenValidatedContext context)
    {
        await application.TokenValidated(context);
        await CheckTokenAsync(context);
        await base.TokenValidated(context);
    }

    public override async Task AuthenticationFailed(AuthenticationFailedContext context)
    {
        await application.AuthenticationFailed(context);
        await ClassifyFailureAsync(context);
        await base.AuthenticationFailed(context);
    }

    public override async Task Challenge(JwtBearerChallengeContext context)
    {
        await application.Challenge(context);
        WriteChallenge(context);
        await base.Challenge(context);
    }

    public override async Task Forbidden(ForbiddenContext context)
    {
        await application.Forbidden(context);
        await base.Forbidden(context);
    }

    private async Task CheckTokenAsync(TokenValidatedContext context)
    {
        if (context.Result is not null)
        {
            return;
        }

        if (context.SecurityToken is not JsonWebToken token)
        {
            context.Fail(new TokenRevokedException("The token is not a JWS the session check can read."));
            return;
        }

        // RFC 7515 §7.1: each segment is strict base64url. IdentityModel decodes leniently (padding, whitespace), so two
        // texts of one token would both pass; the token service and the DPoP checker refuse all but the canonical one.
        if (!Base64UrlEncoding.IsStrictCompactJws(token.EncodedToken))
        {
            context.Fail(new SecurityTokenMalformedException("The token is not strict base64url."));
            return;
        }

        // RFC 7515 §4.1.11: a recipient MUST refuse a JWS whose "crit" names extensions it does not understand, and
        // we understand none; IdentityModel does not look at "crit". (The token service never writes it.)
        if (token.TryGetHeaderValue<object>("crit", out _))
        {
            context.Fail(new SecurityTokenMalformedException("The token names critical header extensions that are not supported."));
            return;
        }

        // The binding before the session: a copied token gets no answer about its session.
        if (await dpop.CheckAsync(context.HttpContext, token) is { } binding)
        {
            context.Fail(binding);
            return;
        }

        switch (await checker.CheckAsync(token, context.Options, context.HttpContext.RequestAborted))
        {
            case SessionStatus.Revoked:
                context.Fail(new TokenRevokedException());
                break;
            case SessionStatus.Unavailable:
                context.Fail(new TokenStatusUnavailableException());
                break;
        }
    }

    private async Task ClassifyFailureAsync(AuthenticationFailedContext context)
    {
        if (context.Result is not null)
        {
            return;
        }

        // "No key for this kid" is also what a scheme that never reached the JWKS reports; other exceptions than
        // SecurityTokenException JwtBearer would rethrow (a 500). Either the discovery document or JWKS cannot be
        // fetched: the service is unreachable, so the request fails closed with 503; or the token's content made a
        // reader throw (text that is not Unicode, for instance): a bad token, 401 invalid_token.
        if (context.Exception is SecurityTokenSignatureKeyNotFoundException)
        {
            if (FreshKeyValidation.Applies(context, out var token))
            {
                await freshKeys.ValidateAsync(context, token);
            }
            else if (!await MetadataAvailableAsync(context.Options, context.HttpContext.RequestAborted))
            {
                context.Fail(new TokenStatusUnavailableException("The token service's keys cannot be fetched.", context.Exception));
            }
        }
        else if (context.Exception is not SecurityTokenException)
        {
            context.Fail(await MetadataAvailableAsync(context.Options, context.HttpContext.RequestAborted)
                ? new SecurityTokenMalformedException("The token is not a valid access token.", context.Exception)
                : new TokenStatusUnavailableException("The token service's metadata cannot be fetched.", context.Exception));
        }
    }

    private void WriteChallenge(JwtBearerChallengeContext context)
    {
        if (context.Handled)
        {
            return;
        }

        switch (context.AuthenticateFailure)
        {
            case DpopBindingException binding:
                // RFC 9449 §7.1: the DPoP challenge with the error; its description is a fixed text (RFC 6750 §3).
                context.HandleResponse();
                context.Response.StatusCode = StatusCodes.Status401Unauthorized;
                context.Response.Headers.WWWAuthenticate = dpop.Challenge(binding.Error, binding.Message);
                return;
            case TokenStatusUnavailableException unavailable:
                context.HandleResponse();
                context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
                context.Response.Headers.RetryAfter = ((int)Math.Ceiling(check.RetryAfter.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
                context.Response.Headers.WWWAuthenticate = $"Bearer error=\"invalid_token\", error_description=\"{unavailable.Message}\"";
                return;
            case not null when DpopBinding.UsedDpop(context.HttpContext):
                // Any other failure of a DPoP request (expired, wrong audience, revoked): invalid_token in the DPoP challenge.
                context.HandleResponse();
                context.Response.StatusCode = StatusCodes.Status401Unauthorized;
                context.Response.Headers.WWWAuthenticate = dpop.Challenge(BearerErrors.InvalidToken, "The access token is not valid");
                return;
            case TokenRevokedException revoked:
                // RFC 6750 §3.1: invalid_token with a human-readable description.
                context.ErrorDescription = revoked.Message;
                break;
        }

        // RFC 9449 §7.2: both schemes are offered. JwtBearer writes its Bearer challenge (with the error, if any)
        // after this event; the DPoP one follows it.
        var response = context.Response;
        response.OnStarting(() =>
        {
            if (response.StatusCode == StatusCodes.Status401Unauthorized)
            {
                response.Headers.Append(HeaderNames.WWWAuthenticate, dpop.Challenge());
            }

            return Task.CompletedTask;
        });
    }

    /// <summary>Whether the scheme's discovery document and JWKS can be fetched (true when the scheme has none to fetch).</summary>
    private static async Task<bool> MetadataAvailableAsync(JwtBearerOptions options, CancellationToken cancellationToken)
    {
        if (options.ConfigurationManager is not { } manager)
        {
            return true;
        }

        try
        {
            await manager.GetConfigurationAsync(cancellationToken);
            return true;
        }
        catch (Exception ex) when (ex is InvalidOperationException or HttpRequestException or IOException or OperationCanceledException)
        {
            return false;
        }
    }
}
