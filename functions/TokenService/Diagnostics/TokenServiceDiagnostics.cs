using System.Diagnostics;
using Microsoft.AspNetCore.Http;

namespace TokenService.Diagnostics;

/// <summary>
/// The service's <see cref="ActivitySource"/> (spans) and the names its <see cref="System.Diagnostics.Metrics.Meter"/> and
/// spans share. Only System.Diagnostics here: the hosts add OpenTelemetry and its exporters
/// (functions/TokenService.Telemetry), listening to <see cref="Name"/>.
/// </summary>
public static class TokenServiceDiagnostics
{
    /// <summary>Name of the meter and of the activity source.</summary>
    public const string Name = "TokenService";

    public static readonly string Version = typeof(TokenServiceDiagnostics).Assembly.GetName().Version?.ToString() ?? "0.0.0";

    public static readonly ActivitySource Source = new(Name, Version);

    /// <summary>Span names: low cardinality, one per operation (OpenTelemetry span naming).</summary>
    public static class Spans
    {
        public const string TokenExchange = "tokenservice.token.exchange";
        public const string Refresh = "tokenservice.token.refresh";
        public const string Revoke = "tokenservice.token.revoke";
        public const string Introspect = "tokenservice.token.introspect";
        public const string IdpEvents = "tokenservice.idp_events.process";
        public const string KeyRotationCheck = "tokenservice.keys.rotation_check";
    }

    /// <summary>Span attribute: the OAuth error code a request was answered with (RFC 6749 §5.2).</summary>
    public const string OAuthErrorTag = "tokenservice.oauth.error";

    /// <summary>
    /// Runs an endpoint's operation in a span named <paramref name="name"/>, tagged with the client and the answer's
    /// status. Without a listener it is the bare call: no span, no state machine, and <paramref name="body"/> is a
    /// static lambda over a value-tuple <paramref name="state"/>, so nothing is allocated for tracing.
    /// </summary>
    public static Task TraceAsync<TState>(string name, HttpContext context, string clientId, TState state, Func<TState, Task> body) =>
        Source.HasListeners() ? TraceCoreAsync(name, context, clientId, state, body) : body(state);

    private static async Task TraceCoreAsync<TState>(string name, HttpContext context, string clientId, TState state, Func<TState, Task> body)
    {
        using var activity = Source.StartActivity(name, ActivityKind.Internal);
        activity?.SetTag(TokenServiceMetrics.Tags.ClientId, clientId);
        try
        {
            await body(state);
            var status = context.Response.StatusCode;
            activity?.SetTag(TokenServiceMetrics.Tags.HttpStatusCode, status);
            if (status >= 400)
            {
                activity?.SetStatus(ActivityStatusCode.Error);
            }
        }
        catch (Exception ex)
        {
            RecordError(activity, ex);
            throw;
        }
    }

    /// <summary>Marks a span failed with the exception's type (OpenTelemetry <c>error.type</c>); never its message, which may quote input.</summary>
    public static void RecordError(Activity? activity, Exception ex)
    {
        if (activity is null)
        {
            return;
        }

        activity.SetTag(TokenServiceMetrics.Tags.ErrorType, ErrorType(ex));
        activity.SetStatus(ActivityStatusCode.Error, ex.GetType().Name);
    }

    /// <summary>The <c>error.type</c> of an exception: the failing dependency for ours, the type name otherwise.</summary>
    public static string ErrorType(Exception ex) => ex switch
    {
        DependencyUnavailableException { RetryAfter: not null } d => d.Dependency + "_throttled",
        DependencyUnavailableException d => d.Dependency + "_unavailable",
        OperationCanceledException => "canceled",
        _ => ex.GetType().FullName ?? "error",
    };
}
