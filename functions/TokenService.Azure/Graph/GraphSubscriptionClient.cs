using System.Globalization;
using System.Text.Json;
using Azure;
using Azure.Core;
using Azure.Core.Pipeline;
using TokenService.Events;

namespace TokenService.Azure.Graph;

/// <summary>
/// The app's Microsoft Graph subscriptions through Graph v1.0 (subscription resource: create, list, update, delete,
/// reauthorize), with an app-only token of the app's identity for <c>{endpoint}/.default</c> (User.Read.All lets it
/// create and renew subscriptions on <c>users</c>). 404 → a result (null / false): Graph answers it for a subscription
/// that lapsed or was deleted. Throttling, outages, refused permissions and unreadable answers →
/// <see cref="DependencyUnavailableException"/>.
/// </summary>
public sealed class GraphSubscriptionClient : IGraphSubscriptionClient
{
    private readonly HttpPipeline _pipeline;
    private readonly string _endpoint;

    public GraphSubscriptionClient(Uri endpoint, TokenCredential credential, ClientOptions? options = null)
    {
        _endpoint = endpoint.AbsoluteUri.TrimEnd('/');
        _pipeline = GraphPipeline.Build(_endpoint, credential, options);
    }

    public async Task<IReadOnlyList<GraphSubscription>> ListAsync(CancellationToken cancellationToken)
    {
        var result = new List<GraphSubscription>();
        string? next = _endpoint + "/v1.0/subscriptions";
        while (next is not null)
        {
            // Graph pages collections with @odata.nextLink (an absolute URL); it stays on our endpoint.
            if (!next.StartsWith(_endpoint + "/", StringComparison.OrdinalIgnoreCase))
            {
                throw new DependencyUnavailableException("graph", "Microsoft Graph answered with a next link to another host.");
            }

            using var json = await SendAsync(RequestMethod.Get, next, null, 200, cancellationToken)
                ?? throw new DependencyUnavailableException("graph", "Microsoft Graph answered 404 to the subscription list.");
            var root = json.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("value", out var value) || value.ValueKind != JsonValueKind.Array)
            {
                throw new DependencyUnavailableException("graph", "Microsoft Graph answered the subscription list without a value array.");
            }

            result.AddRange(value.EnumerateArray().Select(Read));
            next = root.TryGetProperty("@odata.nextLink", out var link) && link.ValueKind == JsonValueKind.String ? link.GetString() : null;
        }

        return result;
    }

    public async Task<GraphSubscription> CreateAsync(GraphSubscriptionRequest request, CancellationToken cancellationToken)
    {
        var body = new Dictionary<string, string?>
        {
            ["changeType"] = request.ChangeType,
            ["notificationUrl"] = request.NotificationUrl,
            ["lifecycleNotificationUrl"] = request.LifecycleNotificationUrl,
            ["resource"] = request.Resource,
            ["expirationDateTime"] = Iso(request.ExpirationDateTime),
            ["clientState"] = request.ClientState,
        }.Where(p => p.Value is not null).ToDictionary();
        using var json = await SendAsync(RequestMethod.Post, _endpoint + "/v1.0/subscriptions", body, 201, cancellationToken)
            ?? throw new DependencyUnavailableException("graph", "Microsoft Graph answered 404 to a subscription creation.");
        return Read(json.RootElement);
    }

    public async Task<GraphSubscription?> RenewAsync(string id, DateTimeOffset expirationDateTime, CancellationToken cancellationToken)
    {
        var body = new Dictionary<string, string?> { ["expirationDateTime"] = Iso(expirationDateTime) };
        using var json = await SendAsync(RequestMethod.Patch, SubscriptionUri(id), body, 200, cancellationToken);
        return json is null ? null : Read(json.RootElement);
    }

    public async Task<bool> ReauthorizeAsync(string id, CancellationToken cancellationToken)
    {
        using var json = await SendAsync(RequestMethod.Post, SubscriptionUri(id) + "/reauthorize", null, 204, cancellationToken);
        return json is not null;
    }

    public async Task<bool> DeleteAsync(string id, CancellationToken cancellationToken)
    {
        using var json = await SendAsync(RequestMethod.Delete, SubscriptionUri(id), null, 204, cancellationToken);
        return json is not null;
    }

    private string SubscriptionUri(string id) => $"{_endpoint}/v1.0/subscriptions/{Uri.EscapeDataString(id)}";

    private static string Iso(DateTimeOffset value) => value.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture);

    // The answer's JSON; an empty document for a success without a body (204, or 200 on reauthorize); null for 404.
    private async Task<JsonDocument?> SendAsync(RequestMethod method, string uri, Dictionary<string, string?>? body, int expected, CancellationToken cancellationToken)
    {
        using var message = _pipeline.CreateMessage();
        message.Request.Method = method;
        message.Request.Uri.Reset(new Uri(uri));
        message.Request.Headers.SetValue("Accept", "application/json");
        if (body is not null)
        {
            message.Request.Headers.SetValue("Content-Type", "application/json");
            message.Request.Content = RequestContent.Create(JsonSerializer.SerializeToUtf8Bytes(body));
        }

        if (!await GraphPipeline.SendAsync(_pipeline, message, expected, $"{method} {message.Request.Uri.Path}", cancellationToken))
        {
            return null;
        }

        var content = message.Response.Content.ToMemory();
        return content.Length == 0 ? JsonDocument.Parse("{}") : GraphPipeline.ParseJson(content);
    }

    private static GraphSubscription Read(JsonElement e)
    {
        string? Text(string name) => e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var p) && p.ValueKind == JsonValueKind.String ? p.GetString() : null;
        var id = Text("id");
        var expiration = Text("expirationDateTime");
        if (string.IsNullOrEmpty(id) || !DateTimeOffset.TryParse(expiration, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var expires))
        {
            throw new DependencyUnavailableException("graph", "Microsoft Graph answered with a subscription without id or expirationDateTime.");
        }

        return new GraphSubscription(id, Text("resource") ?? "", Text("changeType"), Text("notificationUrl"), expires);
    }
}
