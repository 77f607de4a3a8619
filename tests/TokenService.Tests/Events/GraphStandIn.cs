using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;

namespace TokenService.Tests.Events;

/// <summary>
/// Microsoft Graph v1.0 subscriptions as the documentation describes them, on the test's clock: <c>users</c>
/// subscriptions live at most 41,760 minutes (400 beyond, or for an expiration in the past), a subscription past its
/// expirationDateTime is gone (404 to PATCH, reauthorize and DELETE; absent from the list), the list shows the caller's
/// live ones, clientState is at most 128 characters, and every call needs a bearer token.
/// <see cref="ListBarrier"/> holds list answers (read at arrival) until that many are waiting, to make instances race.
/// </summary>
public sealed class GraphStandIn(TimeProvider time) : HttpMessageHandler
{
    public static readonly TimeSpan MaxLifetime = TimeSpan.FromMinutes(41_760);

    private readonly ConcurrentDictionary<string, Subscription> _subscriptions = new();
    private int _created;
    private int _listsHeld;

    public sealed record Subscription(string Id, string Resource, string ChangeType, string NotificationUrl, string? LifecycleNotificationUrl, string? ClientState, DateTimeOffset Expiration);

    public int Reauthorizations;
    public int Renewals;
    public int BadRequests;

    /// <summary>When set, Graph answers 503 to everything (an outage).</summary>
    public bool Down { get; set; }

    /// <summary>Runs once after the next list answer (e.g. Graph removes the subscription before the renewal).</summary>
    public Action? AfterNextList { get => _afterNextList; set => _afterNextList = value; }

    private Action? _afterNextList;

    /// <summary>When set, the first list calls wait until this many are in flight.</summary>
    public CountdownEvent? ListBarrier { get; set; }

    public int Created => Volatile.Read(ref _created);

    /// <summary>The subscriptions Graph still holds (live ones: a lapsed subscription is deleted by Graph).</summary>
    public IReadOnlyList<Subscription> Live => [.. _subscriptions.Values.Where(s => s.Expiration > time.GetUtcNow())];

    /// <summary>Graph removes a subscription on its own (what a subscriptionRemoved lifecycle notification announces).</summary>
    public void Remove(string id) => _subscriptions.TryRemove(id, out _);

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        if (request.Headers.Authorization is not { Scheme: "Bearer", Parameter.Length: > 0 })
        {
            return Answer(HttpStatusCode.Unauthorized, null);
        }

        if (Down)
        {
            return Answer(HttpStatusCode.ServiceUnavailable, null);
        }

        var path = request.RequestUri!.AbsolutePath.TrimEnd('/');
        var now = time.GetUtcNow();
        const string root = "/v1.0/subscriptions";
        if (path == root && request.Method == HttpMethod.Get)
        {
            // The answer is read before the barrier: a held caller released first could otherwise create before the
            // other's list is read, and the race the barrier stages would not happen.
            var value = new JsonArray([.. Live.OrderBy(s => s.Id, StringComparer.Ordinal).Select(s => Json(s))]);
            if (ListBarrier is { } barrier && Interlocked.Increment(ref _listsHeld) <= barrier.InitialCount)
            {
                barrier.Signal();
                await Task.Run(() => barrier.Wait(TimeSpan.FromSeconds(10)), cancellationToken);
            }

            Interlocked.Exchange(ref _afterNextList, null)?.Invoke();
            return Answer(HttpStatusCode.OK, new JsonObject { ["value"] = value });
        }

        if (path == root && request.Method == HttpMethod.Post)
        {
            var body = JsonNode.Parse(await request.Content!.ReadAsStringAsync(cancellationToken))!.AsObject();
            var expiration = ReadExpiration(body);
            var clientState = (string?)body["clientState"];
            if ((string?)body["resource"] != "users" || (string?)body["changeType"] is not { Length: > 0 } changeType
                || (string?)body["notificationUrl"] is not { Length: > 0 } notificationUrl
                || expiration is not { } expires || expires <= now || expires > now + MaxLifetime || clientState is { Length: > 128 })
            {
                Interlocked.Increment(ref BadRequests);
                return Answer(HttpStatusCode.BadRequest, null);
            }

            var created = new Subscription(Guid.NewGuid().ToString(), "users", changeType, notificationUrl, (string?)body["lifecycleNotificationUrl"], clientState, expires);
            _subscriptions[created.Id] = created;
            Interlocked.Increment(ref _created);
            return Answer(HttpStatusCode.Created, Json(created));
        }

        if (!path.StartsWith(root + "/", StringComparison.Ordinal))
        {
            return Answer(HttpStatusCode.NotFound, null);
        }

        var rest = path[(root.Length + 1)..].Split('/');
        var id = Uri.UnescapeDataString(rest[0]);
        if (!_subscriptions.TryGetValue(id, out var subscription) || subscription.Expiration <= now)
        {
            return Answer(HttpStatusCode.NotFound, null);
        }

        if (rest is [_, "reauthorize"] && request.Method == HttpMethod.Post)
        {
            Interlocked.Increment(ref Reauthorizations);
            return Answer(HttpStatusCode.NoContent, null);
        }

        if (rest.Length == 1 && request.Method == HttpMethod.Patch)
        {
            var body = JsonNode.Parse(await request.Content!.ReadAsStringAsync(cancellationToken))!.AsObject();
            if (ReadExpiration(body) is not { } expires || expires <= now || expires > now + MaxLifetime)
            {
                Interlocked.Increment(ref BadRequests);
                return Answer(HttpStatusCode.BadRequest, null);
            }

            var renewed = subscription with { Expiration = expires };
            _subscriptions[id] = renewed;
            Interlocked.Increment(ref Renewals);
            return Answer(HttpStatusCode.OK, Json(renewed));
        }

        if (rest.Length == 1 && request.Method == HttpMethod.Delete)
        {
            return _subscriptions.TryRemove(id, out _) ? Answer(HttpStatusCode.NoContent, null) : Answer(HttpStatusCode.NotFound, null);
        }

        return Answer(HttpStatusCode.MethodNotAllowed, null);
    }

    private static DateTimeOffset? ReadExpiration(JsonObject body) =>
        (string?)body["expirationDateTime"] is { } text && DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var value) ? value : null;

    private static JsonObject Json(Subscription s) => new()
    {
        ["id"] = s.Id, ["resource"] = s.Resource, ["changeType"] = s.ChangeType, ["notificationUrl"] = s.NotificationUrl,
        ["lifecycleNotificationUrl"] = s.LifecycleNotificationUrl, ["expirationDateTime"] = s.Expiration.UtcDateTime.ToString("O", CultureInfo.InvariantCulture),
        ["clientState"] = null, // Graph never returns clientState
    };

    private static HttpResponseMessage Answer(HttpStatusCode status, JsonNode? body) => new(status)
    {
        Content = body is null ? new ByteArrayContent([]) : new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"),
    };
}
