using System.Globalization;
using Microsoft.AspNetCore.Http;
using TokenService.Protocol;

namespace TokenService.Http;

/// <summary>
/// 429 Too Many Requests (RFC 6585 §4) with Retry-After in whole seconds (RFC 9110 §10.2.3), never cached. OAuth
/// routes answer the RFC 6749 §5.2 JSON shape with <c>temporarily_unavailable</c>: no OAuth error code is registered
/// for rate limiting; RFC 8628 §3.5 <c>slow_down</c> means "poll the device flow 5 s slower", which a token-exchange or
/// refresh client would misread; <c>temporarily_unavailable</c> (RFC 6749 §4.1.2.1: "temporary overloading") is the
/// code these routes already answer with 503, so clients need one retry path, and the status tells the two apart.
/// Other routes answer RFC 9457 problem details. A browser may read Retry-After only when CORS exposes it.
/// </summary>
public static class RateLimitResponses
{
    public static Task WriteAsync(HttpContext context, bool oauthErrors, TimeSpan retryAfter)
    {
        var seconds = Math.Max(1, (long)Math.Ceiling(retryAfter.TotalSeconds));
        var headers = context.Response.Headers;
        headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
        if (headers.AccessControlAllowOrigin.Count > 0)
        {
            headers.AccessControlExposeHeaders = "Retry-After";
        }

        var detail = $"Too many requests; retry after {seconds.ToString(CultureInfo.InvariantCulture)} s.";
        return oauthErrors
            ? OAuthResponses.WriteErrorAsync(context, StatusCodes.Status429TooManyRequests, OAuthErrors.TemporarilyUnavailable, detail)
            : ProblemResponses.WriteAsync(context, StatusCodes.Status429TooManyRequests, "Too Many Requests", detail);
    }
}
