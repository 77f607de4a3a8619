using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using TokenService.Configuration;
using TokenService.Dpop;
using TokenService.Http;

namespace TokenService.Endpoints;

/// <summary>
/// The HTTP side of DPoP for this service's endpoints: reads the <c>DPoP</c> header, checks it against the request's
/// method and URI, offers nonces and writes the RFC 9449 errors. The URI a proof must name (htu) is the configured
/// issuer plus the request path, the URI discovery gives clients: behind a proxy or Front Door the host and scheme the
/// app sees are not the ones the client used, and the request's own Host header is not to be trusted for it.
/// In Development only, a proof may also name the address the request came to (scheme and Host): the development
/// defaults give the issuer http://127.0.0.1:7071 while a browser app must call http://localhost:7071 to be same-site
/// with its page on localhost (the refresh cookie is SameSite=Strict).
/// </summary>
public sealed class DpopRequestReader(IDpopProofValidator validator, IDpopNonceService nonces, IOptions<DpopOptions> options, IOptions<TokenServiceOptions> tokenService, IHostEnvironment environment)
{
    public const string ProofHeader = "DPoP";
    public const string NonceHeader = "DPoP-Nonce";

    private readonly string _base = tokenService.Value.IssuerOrThrow.TrimEnd('/');
    private readonly bool _nonces = options.Value.RequireNonce;
    private readonly string _algs = string.Join(' ', validator.Algorithms);
    private readonly bool _acceptRequestAddress = environment.IsDevelopment();

    /// <summary>
    /// The RFC 7638 thumbprint of the key of this request's valid proof (the <c>jkt</c> tokens are bound to), or null
    /// when the request carried none.
    /// </summary>
    public static string? ProofKey(HttpContext context) => context.Features.Get<ValidProof>()?.Thumbprint;

    /// <summary>
    /// Checks the request's proof; <paramref name="accessToken"/> is the token presented with it, if any (for <c>ath</c>).
    /// A valid proof's key is kept for <see cref="ProofKey"/>.
    /// </summary>
    public async ValueTask<DpopProofResult> ValidateAsync(HttpContext context, string? accessToken = null)
    {
        var proofs = context.Request.Headers[ProofHeader];
        if (proofs.Count == 0)
        {
            // RFC 9449 §4.3: no DPoP header is no proof (the validator's first check); the URIs a proof would be checked
            // against are not built for the requests that carry none, most of them.
            return DpopProofResult.Absent;
        }

        var path = RawPath(context);
        var requestAddress = _acceptRequestAddress && context.Request.Host.HasValue
            ? context.Request.Scheme + "://" + context.Request.Host.ToUriComponent() + path
            : null;
        var result = await validator.ValidateAsync(
            new DpopProofRequest(proofs, context.Request.Method, _base + path, accessToken, requestAddress), context.RequestAborted);
        if (result.IsValid)
        {
            context.Features.Set(new ValidProof(result.Thumbprint!));
        }

        return result;
    }

    /// <summary>
    /// The token endpoint's check (RFC 9449 §5): true to go on, with or without a proof; false after writing
    /// <c>invalid_dpop_proof</c> or <c>use_dpop_nonce</c>. <paramref name="required"/>: the client's <c>RequireDpop</c>.
    /// </summary>
    public async Task<bool> CheckTokenRequestAsync(HttpContext context, bool required)
    {
        var proof = await ValidateAsync(context);
        OfferNonce(context.Response);
        if (proof.IsValid || (proof.IsAbsent && !required))
        {
            return true;
        }

        await WriteTokenErrorAsync(context, proof.IsAbsent
            ? DpopProofResult.Invalid(DpopProofError.Missing, "This client must send a DPoP proof with every token request.")
            : proof);
        return false;
    }

    /// <summary>With nonces on, every answer carries a fresh one (RFC 9449 §8.2), so clients rarely meet use_dpop_nonce.</summary>
    public void OfferNonce(HttpResponse response)
    {
        if (_nonces)
        {
            response.Headers[NonceHeader] = nonces.Issue();
        }
    }

    /// <summary>RFC 9449 §5 and §8: a refused proof at the token endpoint is a 400 with invalid_dpop_proof or use_dpop_nonce.</summary>
    public Task WriteTokenErrorAsync(HttpContext context, DpopProofResult result) =>
        OAuthResponses.WriteErrorAsync(context, StatusCodes.Status400BadRequest, result.ErrorCode, result.Description ?? "The DPoP proof is invalid.");

    /// <summary>
    /// A <c>DPoP</c> challenge (RFC 9449 §7.1) with the accepted algorithms, and an error when the request failed. The
    /// description must be a fixed text: RFC 6750 §3 restricts its characters.
    /// </summary>
    public string Challenge(string? error = null, string? description = null) =>
        error is null
            ? $"DPoP algs=\"{_algs}\""
            : $"DPoP error=\"{error}\", error_description=\"{description}\", algs=\"{_algs}\"";

    /// <summary>The path as the client sent it (percent-encodings kept), without query.</summary>
    private static string RawPath(HttpContext context)
    {
        var raw = context.Features.Get<IHttpRequestFeature>()?.RawTarget;
        if (!string.IsNullOrEmpty(raw) && raw[0] == '/')
        {
            var end = raw.AsSpan().IndexOfAny('?', '#');
            return end >= 0 ? raw[..end] : raw;
        }

        return (context.Request.PathBase + context.Request.Path).ToUriComponent();
    }

    private sealed record ValidProof(string Thumbprint);
}
