using System.Text.Json;
using Azure;
using Azure.Core;
using Azure.Core.Pipeline;
using TokenService.Events;

namespace TokenService.Azure.Graph;

/// <summary>
/// Looks users up in Microsoft Graph for <c>Microsoft.Graph.UserUpdated</c> notifications, which carry ids only:
/// <c>GET {endpoint}/v1.0/users/{id}?$select=id,accountEnabled</c> with an app token for
/// <c>{endpoint}/.default</c> (the identity needs User.Read.All). 404 → <see cref="GraphUserState.NotFound"/>: a
/// default deletion in Entra ID is a soft delete, announced as <c>Microsoft.Graph.UserUpdated</c>, after which Graph
/// answers 404 for the user (Event Grid docs, "Microsoft Entra events"). Throttling, outages, auth failures and
/// unreadable answers → <see cref="DependencyUnavailableException"/>, so Event Grid redelivers the event.
/// </summary>
public sealed class GraphUserLookup : IGraphUserLookup
{
    private readonly HttpPipeline _pipeline;
    private readonly string _endpoint;

    public GraphUserLookup(Uri endpoint, TokenCredential credential, ClientOptions? options = null)
    {
        _endpoint = endpoint.AbsoluteUri.TrimEnd('/');
        _pipeline = GraphPipeline.Build(_endpoint, credential, options);
    }

    public async ValueTask<GraphUserState> GetUserStateAsync(string userId, CancellationToken cancellationToken)
    {
        using var message = _pipeline.CreateMessage();
        message.Request.Method = RequestMethod.Get;
        message.Request.Uri.Reset(new Uri($"{_endpoint}/v1.0/users/{Uri.EscapeDataString(userId)}?$select=id,accountEnabled"));
        message.Request.Headers.SetValue("Accept", "application/json");
        if (!await GraphPipeline.SendAsync(_pipeline, message, 200, "the user lookup", cancellationToken))
        {
            return GraphUserState.NotFound;
        }

        using var json = GraphPipeline.ParseJson(message.Response.Content.ToMemory());
        return json.RootElement.ValueKind == JsonValueKind.Object && json.RootElement.TryGetProperty("accountEnabled", out var enabled)
            ? enabled.ValueKind switch
            {
                JsonValueKind.True => GraphUserState.Enabled,
                JsonValueKind.False => GraphUserState.Disabled,
                _ => GraphUserState.Unknown,
            }
            : GraphUserState.Unknown;
    }
}
