using Microsoft.AspNetCore.Http;
using TokenService.Clients;

namespace TokenService.Http;

/// <summary>
/// CORS for the browser-facing OAuth endpoints, written here rather than with middleware so both hosts
/// share it: only origins registered for spa clients get an answer, always with credentials.
/// </summary>
public sealed class CorsPolicy(IClientStore clients)
{
    /// <summary>Adds CORS headers when the request's Origin is allowed. Returns the origin or null.</summary>
    public string? Apply(HttpContext context)
    {
        var origin = context.Request.Headers.Origin;
        if (origin.Count != 1 || string.IsNullOrEmpty(origin[0]))
        {
            return null;
        }

        var value = ConfigurationClientStore.NormalizeOrigin(origin[0]!);
        context.Response.Headers.Vary = "Origin";
        if (!clients.IsAllowedOrigin(value))
        {
            return null;
        }

        context.Response.Headers.AccessControlAllowOrigin = value;
        context.Response.Headers.AccessControlAllowCredentials = "true";

        // RFC 9449 §7.1 and §8: a page reads the DPoP challenge and the next nonce only when they are exposed; and Date,
        // so that a browser whose clock is off can align the iat of its proofs with ours (§11.1).
        context.Response.Headers.AccessControlExposeHeaders = "DPoP-Nonce, WWW-Authenticate, Retry-After, Date";
        return value;
    }

    /// <summary>Answers a preflight: 204 with the allowed method and headers for an allowed origin, 403 otherwise.</summary>
    public Task PreflightAsync(HttpContext context, string methods)
    {
        if (Apply(context) is null)
        {
            return ProblemResponses.WriteAsync(context, StatusCodes.Status403Forbidden, "Forbidden", "This origin is not allowed.");
        }

        context.Response.Headers.AccessControlAllowMethods = methods;
        context.Response.Headers.AccessControlAllowHeaders = "Content-Type, Authorization, DPoP";
        context.Response.Headers.AccessControlMaxAge = "600";
        context.Response.StatusCode = StatusCodes.Status204NoContent;
        return Task.CompletedTask;
    }
}
