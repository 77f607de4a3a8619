using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;

namespace TokenService.Validation;

/// <summary>
/// Serves the push endpoint (RFC 8935) of a scheme whose receiver is in push mode, at the start of the application's
/// pipeline. A startup filter rather than a route the application must map: the endpoint belongs to the session check
/// the application already added (one line more to forget would leave the stream pushing into 404s, and the API
/// unhealthy without a word), and it must run before the application's authentication and authorization, which would
/// refuse the transmitter (its credential is the stream's own Authorization header, not an access token).
/// </summary>
internal sealed class SharedSignalsPushStartupFilter(string scheme, IOptionsMonitor<SessionCheckOptions> checks, Func<SharedSignalsReceiver> receiver) : IStartupFilter
{
    public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
    {
        var options = checks.Get(scheme).SharedSignals;
        if (options.Delivery == SharedSignalsDelivery.Push)
        {
            var path = new PathString(options.PushPath);
            var push = receiver();
            app.Use((context, nextMiddleware) => context.Request.Path.Equals(path, StringComparison.Ordinal)
                ? push.HandlePushAsync(context)
                : nextMiddleware(context));
        }

        next(app);
    };
}
