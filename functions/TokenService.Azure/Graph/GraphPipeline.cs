using System.Text.Json;
using Azure;
using Azure.Core;
using Azure.Core.Pipeline;
using TokenService.Events;

namespace TokenService.Azure.Graph;

/// <summary>
/// The HTTP pipeline every Microsoft Graph adapter uses: Azure.Core's retries (3, 10 s network timeout) and an app-only
/// bearer token for <c>{endpoint}/.default</c> from the app's credential (its managed identity in Azure), by Azure.Core's
/// own <see cref="BearerTokenAuthenticationPolicy"/>, as the Graph SDK's pipeline does. That policy sends tokens over
/// https only, with no exception for loopback (tests serve their Graph stand-in over a test transport under an https
/// endpoint), and caches the token by the wall clock (<c>DateTimeOffset.UtcNow</c>, refreshed 5 minutes before expiry),
/// not the app's <see cref="TimeProvider"/>: no token cache of ours is left to put on it.
/// </summary>
internal static class GraphPipeline
{
    public static HttpPipeline Build(string endpoint, TokenCredential credential, ClientOptions? options) =>
        HttpPipelineBuilder.Build(options ?? new GraphClientOptions(), new BearerTokenAuthenticationPolicy(credential, endpoint + "/.default"));

    /// <summary>
    /// Sends <paramref name="message"/> and maps what every Graph adapter maps alike: false for 404 (Graph's answer for a
    /// user deleted or a subscription lapsed); <paramref name="expected"/> (200 and 204 stand for each other) passes;
    /// a transport failure, a timeout or any other status is <see cref="DependencyUnavailableException"/>.
    /// <paramref name="operation"/> names the call in that exception's message (never a user id).
    /// </summary>
    public static async Task<bool> SendAsync(HttpPipeline pipeline, HttpMessage message, int expected, string operation, CancellationToken cancellationToken)
    {
        try
        {
            await pipeline.SendAsync(message, cancellationToken);
        }
        catch (Exception ex) when (ex is RequestFailedException or AggregateException || (ex is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            throw new DependencyUnavailableException("graph", "Microsoft Graph unreachable.", null, ex);
        }

        var status = message.Response.Status;
        if (status == 404)
        {
            return false;
        }

        if (status != expected && !(status is 200 or 204 && expected is 200 or 204))
        {
            throw new DependencyUnavailableException("graph", $"Microsoft Graph answered {status} to {operation}.");
        }

        return true;
    }

    /// <summary>An answer's JSON body; unreadable JSON is <see cref="DependencyUnavailableException"/>.</summary>
    public static JsonDocument ParseJson(ReadOnlyMemory<byte> content)
    {
        try
        {
            return JsonDocument.Parse(content);
        }
        catch (JsonException ex)
        {
            throw new DependencyUnavailableException("graph", "Microsoft Graph answered with unreadable JSON.", null, ex);
        }
    }

    /// <summary>Graph's retry settings; the app's wiring passes them with a registered transport (tests).</summary>
    internal sealed class GraphClientOptions : ClientOptions
    {
        public GraphClientOptions()
        {
            Retry.MaxRetries = 3;
            Retry.NetworkTimeout = TimeSpan.FromSeconds(10);
        }
    }
}
