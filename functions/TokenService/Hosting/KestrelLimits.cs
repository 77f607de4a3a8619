using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace TokenService.Hosting;

/// <summary>
/// The server limits both hosts give their Kestrel: the standalone host's own server, and the Functions worker's (the
/// ASP.NET Core integration serves the worker's HTTP functions on a Kestrel of its own, behind the Functions host's
/// proxy). Under a Functions host the host's own Kestrel applies first, with its defaults (32 KiB of request headers,
/// as here; 100 MB of body, read by the host before it forwards): see docs/api.md, "Under a Functions host".
/// </summary>
public static class KestrelLimits
{
    /// <summary>The largest request body: the events routes take deliveries of at most 1 MiB, the form routes far less.</summary>
    public const long MaxRequestBodySize = 1024 * 1024;

    /// <summary>The request headers together, Kestrel's default made explicit: a 431 beyond it on either host.</summary>
    public const int MaxRequestHeadersTotalSize = 32 * 1024;

    public static void Apply(KestrelServerOptions kestrel)
    {
        ArgumentNullException.ThrowIfNull(kestrel);

        // No Server header: what a response says about the software behind it only helps a scanner (OWASP ASVS 14.3.3).
        kestrel.AddServerHeader = false;
        kestrel.Limits.MaxRequestBodySize = MaxRequestBodySize;
        kestrel.Limits.MaxRequestHeadersTotalSize = MaxRequestHeadersTotalSize;
    }
}
