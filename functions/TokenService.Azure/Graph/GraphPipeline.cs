using Azure.Core;
using Azure.Core.Pipeline;

namespace TokenService.Azure.Graph;

/// <summary>
/// The HTTP pipeline every Microsoft Graph adapter uses: Azure.Core's retries (3, 10 s network timeout) and an app-only
/// bearer token for <c>{endpoint}/.default</c> from the app's credential (its managed identity in Azure), sent over
/// https only (loopback allowed for tests).
/// </summary>
internal static class GraphPipeline
{
    public static HttpPipeline Build(string endpoint, TokenCredential credential, ClientOptions? options) =>
        HttpPipelineBuilder.Build(options ?? new GraphClientOptions(), new AppTokenPolicy(credential, endpoint + "/.default"));

    private sealed class GraphClientOptions : ClientOptions
    {
        public GraphClientOptions()
        {
            Retry.MaxRetries = 3;
            Retry.NetworkTimeout = TimeSpan.FromSeconds(10);
        }
    }

    /// <summary>App-only bearer tokens for one scope; https only (loopback allowed for tests).</summary>
    private sealed class AppTokenPolicy(TokenCredential credential, string scope) : HttpPipelinePolicy
    {
        private AccessToken? _token;

        public override void Process(HttpMessage message, ReadOnlyMemory<HttpPipelinePolicy> pipeline) =>
            ProcessAsync(message, pipeline).AsTask().GetAwaiter().GetResult();

        public override async ValueTask ProcessAsync(HttpMessage message, ReadOnlyMemory<HttpPipelinePolicy> pipeline)
        {
            var uri = message.Request.Uri.ToUri();
            if (uri.Scheme != Uri.UriSchemeHttps && !uri.IsLoopback)
            {
                throw new InvalidOperationException("Graph bearer tokens are only sent over https.");
            }

            if (_token is not { } token || token.ExpiresOn - DateTimeOffset.UtcNow < TimeSpan.FromMinutes(5))
            {
                _token = await credential.GetTokenAsync(new TokenRequestContext([scope]), message.CancellationToken);
            }

            message.Request.Headers.SetValue("Authorization", "Bearer " + _token.Value.Token);
            await ProcessNextAsync(message, pipeline);
        }
    }
}
