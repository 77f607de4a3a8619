using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using TokenService.Dpop;

namespace TokenService.Validation;

/// <summary>A request refused for its DPoP binding (RFC 9449 §7.1): the error code goes into the <c>DPoP</c> challenge.</summary>
public sealed class DpopBindingException : SecurityTokenException
{
    public DpopBindingException()
        : this(BearerErrors.InvalidToken, "The DPoP binding is invalid.")
    {
    }

    public DpopBindingException(string message)
        : this(BearerErrors.InvalidToken, message)
    {
    }

    public DpopBindingException(string message, Exception innerException)
        : base(message, innerException)
    {
        Error = BearerErrors.InvalidToken;
    }

    public DpopBindingException(string error, string message)
        : base(message)
    {
        Error = error;
    }

    /// <summary><c>invalid_token</c>, <c>invalid_dpop_proof</c> or <c>use_dpop_nonce</c>.</summary>
    public string Error { get; }
}

/// <summary>
/// Sender-constrained access tokens at a resource server (RFC 9449 §7) for one JwtBearer scheme: the <c>DPoP</c>
/// authorization scheme, the proof checked with the token service's own rules (TokenService.Dpop: typ, alg allow-list,
/// public <c>jwk</c>, signature, <c>htm</c>, <c>htu</c>, <c>iat</c>, <c>ath</c>, and this API's own <c>jti</c> replay
/// cache), the proof key against the token's <c>cnf.jkt</c>, and a bound token refused when presented as a bearer token.
/// </summary>
internal sealed partial class DpopBinding
{
    private const string UsedDpopScheme = "TokenService.Validation.DpopScheme";
    private const string ProofHeader = "DPoP";

    private readonly DpopProofValidator _validator;
    private readonly Uri? _publicOrigin;
    private readonly string _algorithms;

    public DpopBinding(SessionCheckOptions check, TimeProvider time, ILoggerFactory loggers)
    {
        var options = Options.Create(new DpopOptions { ProofLifetime = check.DpopProofLifetime, ClockSkew = check.DpopClockSkew });
        // Nonces (RFC 9449 §9) are not offered here: without RequireNonce the nonce service is never asked.
        _validator = new DpopProofValidator(check.DpopReplayCache ?? new InMemoryDpopReplayCache(time), new HmacDpopNonceService(options, time), options, time, loggers.CreateLogger<DpopProofValidator>());
        _publicOrigin = check.PublicOrigin;
        if (_publicOrigin is null)
        {
            // Options validation allows this in Development only; once per scheme, when its options are built.
            LogHostTrusted(loggers.CreateLogger<DpopBinding>());
        }

        _algorithms = string.Join(' ', _validator.Algorithms);
    }

    /// <summary>The <c>DPoP</c> challenge (RFC 9449 §7.1) with the accepted proof algorithms and, after a failure, its error.</summary>
    public string Challenge(string? error = null, string? description = null) =>
        error is null
            ? $"DPoP algs=\"{_algorithms}\""
            : $"DPoP error=\"{error}\", error_description=\"{description}\", algs=\"{_algorithms}\"";

    /// <summary><c>OnMessageReceived</c>: takes the token of <c>Authorization: DPoP &lt;token&gt;</c>, which JwtBearer does not read.</summary>
    public static void ReadDpopScheme(MessageReceivedContext context)
    {
        if (context.Token is not null)
        {
            return;
        }

        var header = context.Request.Headers.Authorization;
        if (header.Count == 1 && header[0] is { Length: > 5 } value && value.StartsWith("DPoP ", StringComparison.OrdinalIgnoreCase))
        {
            var token = value[5..].Trim();
            if (token.Length > 0)
            {
                context.Token = token;
                context.HttpContext.Items[UsedDpopScheme] = true;
            }
        }
    }

    public static bool UsedDpop(HttpContext context) => context.Items.ContainsKey(UsedDpopScheme);

    /// <summary>
    /// After JwtBearer validated <paramref name="token"/>: null when its binding holds (a bound token with a valid proof
    /// of its key, or an unbound token sent as a bearer token), else the reason to refuse it: a
    /// <see cref="DpopBindingException"/>, or a <see cref="TokenStatusUnavailableException"/> when the replay cache
    /// cannot answer (fail closed, 503).
    /// </summary>
    public async ValueTask<Exception?> CheckAsync(HttpContext context, JsonWebToken token)
    {
        var jkt = DpopConfirmation.ReadJkt(token);
        if (!UsedDpop(context))
        {
            // RFC 9449 §7.2: a DPoP-bound token presented as a bearer token is refused; otherwise the binding would be
            // worth nothing against a copied token.
            return jkt is null ? null : new DpopBindingException(BearerErrors.InvalidToken, "The access token is DPoP-bound");
        }

        if (jkt is null)
        {
            return new DpopBindingException(BearerErrors.InvalidToken, "The access token is not DPoP-bound");
        }

        var request = context.Request;
        var target = _publicOrigin is { } origin
            ? origin.GetLeftPart(UriPartial.Authority) + (request.PathBase + request.Path).ToUriComponent()
            : request.Scheme + "://" + request.Host.ToUriComponent() + (request.PathBase + request.Path).ToUriComponent();
        DpopProofResult proof;
        try
        {
            proof = await _validator.ValidateAsync(new DpopProofRequest(request.Headers[ProofHeader], request.Method, target, token.EncodedToken), context.RequestAborted);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // A shared replay cache that cannot answer: nobody can tell whether the proof was seen before.
            return new TokenStatusUnavailableException("The DPoP replay cache cannot be reached.", ex);
        }

        if (!proof.IsValid)
        {
            return new DpopBindingException(proof.ErrorCode, proof.IsAbsent ? "A DPoP proof is required" : "The DPoP proof is invalid");
        }

        // RFC 9449 §7.1: the proof must be signed by the key the token is bound to.
        return string.Equals(proof.Thumbprint, jkt, StringComparison.Ordinal)
            ? null
            : new DpopBindingException(BearerErrors.InvalidToken, "Invalid DPoP key binding");
    }

    [LoggerMessage(EventId = 7002, Level = LogLevel.Warning, Message = "SessionCheckOptions.PublicOrigin is not set: DPoP proofs' htu is checked against the request's Host header, which clients choose. Allowed in Development only; set PublicOrigin to this API's public origin.")]
    private static partial void LogHostTrusted(ILogger logger);
}
