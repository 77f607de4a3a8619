using System.Net;
using System.Net.Http.Json;
using Azure;
using Azure.Core;
using Azure.Core.Pipeline;
using Azure.Messaging;
using Azure.Messaging.EventGrid;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.IdentityModel.JsonWebTokens;
using TokenService.Events;
using TokenService.Tests.Infrastructure;
using static TokenService.Tests.Infrastructure.TokenServiceTestHost;

namespace TokenService.Tests.Functions;

/// <summary>
/// The non-HTTP triggers through a real Functions host's own endpoints: the <c>IdpEvents</c> Event Grid trigger at
/// <c>/runtime/webhooks/EventGrid</c> (as an Event Grid subscription of endpoint type AzureFunction delivers), and the
/// timers run at once through the admin API (<c>POST /admin/functions/{name}</c>), as an operator or the portal's
/// "Test/Run" does.
/// </summary>
[RealFunctionsHostTier]
[Collection(RealFunctionsHostCollection.Name)]
public sealed class RealHostTriggerTests(RealFunctionsHostPool pool)
{
    /// <summary>
    /// Keys on a schedule of minutes, for the timer test: a key is published 20 s before it signs, and a new one
    /// every minute. The timer's own schedule (daily) does not matter: the test runs it through the admin API.
    /// </summary>
    public static IDictionary<string, string?> TimerSettings { get; } = new Dictionary<string, string?>
    {
        ["Keys:RotationInterval"] = "00:01:00",
        ["Keys:PropagationTime"] = "00:00:20",
        ["Keys:CheckInterval"] = "00:00:10",

        // Retired keys stay published for RetentionTime (default two days): with a rotation a minute, that is thousands
        // of keys, which Keys:MaxPublishedKeys refuses at start-up. Half an hour covers the default token lifetime.
        ["Keys:RetentionTime"] = "00:30:00",
        ["Keys:MaxPublishedKeys"] = "40",
    };

    // A hang guard for conditions that hold after at most one rotation interval; nothing asserts on time.
    private static readonly TimeSpan Guard = TimeSpan.FromMinutes(4);

    private static async Task<(string Oid, TokenPair Login)> LoginAsync(TokenServiceTestHost host)
    {
        var oid = Guid.NewGuid().ToString();
        return (oid, await host.LoginAsync("pairwise-" + oid, c => c["oid"] = oid));
    }

    private static Task<HttpResponseMessage> DeliverToTriggerAsync(TokenServiceTestHost host, string eventType, string body, string contentType = "application/json")
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/runtime/webhooks/EventGrid?functionName=IdpEvents") { Content = new StringContent(body, Encoding.UTF8) };
        request.Content.Headers.ContentType = System.Net.Http.Headers.MediaTypeHeaderValue.Parse(contentType);
        request.Headers.Add("aeg-event-type", eventType);
        return host.Client.SendAsync(request);
    }

    private static JsonObject EventGridEvent(string type, string userId, string? id = null) => new()
    {
        ["id"] = id ?? Guid.NewGuid().ToString(),
        ["topic"] = "/idp",
        ["subject"] = "users/" + userId,
        ["eventType"] = type,
        // after the session it ends was opened: a late event never ends a later session
        ["eventTime"] = DateTimeOffset.UtcNow.AddSeconds(5).ToString("O"),
        ["dataVersion"] = "1",
        ["data"] = new JsonObject { ["userId"] = userId },
    };

    private static JsonObject CloudEvent(string type, string userId) => new()
    {
        ["specversion"] = "1.0",
        ["id"] = Guid.NewGuid().ToString(),
        ["source"] = "/idp",
        ["type"] = type,
        ["time"] = DateTimeOffset.UtcNow.AddSeconds(5).ToString("O"),
        ["datacontenttype"] = "application/json",
        ["data"] = new JsonObject { ["userId"] = userId },
    };

    private static async Task AssertSessionEndedAsync(TokenServiceTestHost host, TokenPair login)
    {
        Assert.False(await host.IsActiveAsync(login.AccessToken));
        using var refresh = await host.RefreshAsync(login.RefreshToken);
        await AssertOAuthErrorAsync(refresh, "invalid_grant");
    }

    [Fact]
    public async Task The_event_grid_trigger_answers_the_subscription_validation_handshake_with_the_code()
    {
        var host = await pool.GetAsync(RealFunctionsHostPool.IdpEvents);
        var validation = new JsonArray
        {
            new JsonObject
            {
                ["id"] = Guid.NewGuid().ToString(), ["topic"] = "/subscriptions/x", ["subject"] = string.Empty,
                ["eventType"] = "Microsoft.EventGrid.SubscriptionValidationEvent", ["eventTime"] = DateTimeOffset.UtcNow.ToString("O"), ["dataVersion"] = "1",
                ["data"] = new JsonObject { ["validationCode"] = "512d38b6-c7b8-40c8-89fe-f46f9e9622b6", ["validationUrl"] = "https://rp-eastus2.eventgrid.azure.net/validate" },
            },
        };
        using var response = await DeliverToTriggerAsync(host, "SubscriptionValidation", validation.ToJsonString());

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("512d38b6-c7b8-40c8-89fe-f46f9e9622b6", (await JsonAsync(response)).GetProperty("validationResponse").GetString());
    }

    [Fact]
    public async Task An_event_grid_schema_batch_through_the_trigger_ends_the_named_users_sessions_and_acknowledges_other_types()
    {
        var host = await pool.GetAsync(RealFunctionsHostPool.IdpEvents);
        var (disabled, disabledLogin) = await LoginAsync(host);
        var (reset, resetLogin) = await LoginAsync(host);
        var (_, bystanderLogin) = await LoginAsync(host);

        var batch = new JsonArray
        {
            EventGridEvent(IdpEventTypes.AccountDisabled, disabled),
            EventGridEvent(IdpEventTypes.PasswordReset, reset),
            EventGridEvent("Contoso.Something.Else", "someone-else"),
        };
        using var response = await DeliverToTriggerAsync(host, "Notification", batch.ToJsonString());

        Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        await AssertSessionEndedAsync(host, disabledLogin);
        await AssertSessionEndedAsync(host, resetLogin);
        Assert.True(await host.IsActiveAsync(bystanderLogin.AccessToken));
    }

    [Fact]
    public async Task A_cloudevents_batch_through_the_trigger_ends_the_named_users_sessions()
    {
        var host = await pool.GetAsync(RealFunctionsHostPool.IdpEvents);
        var (disabled, disabledLogin) = await LoginAsync(host);
        var (deleted, deletedLogin) = await LoginAsync(host);
        var (_, bystanderLogin) = await LoginAsync(host);

        var batch = new JsonArray { CloudEvent(IdpEventTypes.AccountDisabled, disabled), CloudEvent(IdpEventTypes.AccountDeleted, deleted) };
        using var response = await DeliverToTriggerAsync(host, "Notification", batch.ToJsonString(), "application/cloudevents-batch+json; charset=utf-8");

        Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        await AssertSessionEndedAsync(host, disabledLogin);
        await AssertSessionEndedAsync(host, deletedLogin);
        Assert.True(await host.IsActiveAsync(bystanderLogin.AccessToken));
    }

    /// <summary>
    /// EventGridPublisherClient, Azure's own SDK, pointed at the host's Event Grid endpoint. The SDK speaks as a
    /// publisher to a topic, not as Event Grid delivering to a subscriber: it sends no <c>aeg-event-type</c>, which the
    /// host's Event Grid extension requires of a delivery (it answers 400 without one). With
    /// <paramref name="asDelivery"/> a pipeline policy adds <c>aeg-event-type: Notification</c>, as Event Grid does on
    /// every delivery to an AzureFunction endpoint; the events are then the SDK's own serialization of both schemas.
    /// </summary>
    private static EventGridPublisherClient TriggerPublisher(TokenServiceTestHost host, bool asDelivery)
    {
        var options = new EventGridPublisherClientOptions { Transport = new HttpClientTransport(host.Client), Retry = { MaxRetries = 0 } };
        if (asDelivery)
        {
            options.AddPolicy(new NotificationDeliveryPolicy(), HttpPipelinePosition.PerCall);
        }

        return new EventGridPublisherClient(
            new Uri(host.BaseAddress, "/runtime/webhooks/EventGrid?functionName=IdpEvents"), new AzureKeyCredential("not-checked-by-the-host"), options);
    }

    /// <summary>
    /// What the host answered the SDK. The SDK throws for any status but 200, which a topic answers; the host answers
    /// a delivery 202, which Event Grid counts as delivered (any of 200-204 is), so the status is read either way.
    /// </summary>
    private static async Task<int> StatusOfAsync(Func<Task<Response>> send)
    {
        try
        {
            return (await send()).Status;
        }
        catch (RequestFailedException e)
        {
            return e.Status;
        }
    }

    [Fact]
    public async Task Batches_published_with_the_event_grid_sdk_through_the_trigger_end_the_named_users_sessions()
    {
        var host = await pool.GetAsync(RealFunctionsHostPool.IdpEvents);
        var (disabled, disabledLogin) = await LoginAsync(host);
        var (reset, resetLogin) = await LoginAsync(host);
        var (bystander, bystanderLogin) = await LoginAsync(host);

        // As the SDK sends it, the request is not a delivery: the host refuses it (400) and nothing is applied.
        Assert.Equal((int)HttpStatusCode.BadRequest, await StatusOfAsync(() => TriggerPublisher(host, asDelivery: false).SendEventsAsync(
            [new EventGridEvent("users/" + disabled, IdpEventTypes.AccountDisabled, "1", new { userId = disabled })])));
        Assert.True(await host.IsActiveAsync(disabledLogin.AccessToken));

        var publisher = TriggerPublisher(host, asDelivery: true);
        Assert.Equal((int)HttpStatusCode.Accepted, await StatusOfAsync(() => publisher.SendEventsAsync(
        [
            new EventGridEvent("users/" + disabled, IdpEventTypes.AccountDisabled, "1", new { userId = disabled }),
            new EventGridEvent("users/other", "Contoso.Unrelated", "1", new { userId = bystander }),
        ])));
        await AssertSessionEndedAsync(host, disabledLogin);
        Assert.True(await host.IsActiveAsync(bystanderLogin.AccessToken));

        Assert.Equal((int)HttpStatusCode.Accepted, await StatusOfAsync(() => publisher.SendEventsAsync(
        [
            new CloudEvent("/idp", IdpEventTypes.PasswordReset, new { userId = reset }),
            new CloudEvent("/idp", "Contoso.Unrelated", new { userId = bystander }),
        ])));
        await AssertSessionEndedAsync(host, resetLogin);
        Assert.True(await host.IsActiveAsync(bystanderLogin.AccessToken));
    }

    [Fact]
    public async Task A_redelivered_event_changes_nothing_the_second_time()
    {
        var host = await pool.GetAsync(RealFunctionsHostPool.IdpEvents);
        var (oid, first) = await LoginAsync(host);
        var delivery = new JsonArray { EventGridEvent(IdpEventTypes.AccountDisabled, oid) }.ToJsonString();
        using (var response = await DeliverToTriggerAsync(host, "Notification", delivery))
        {
            Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode}");
        }

        await AssertSessionEndedAsync(host, first);

        // The user signs in again, before the event's time; Event Grid delivers the same event again (at-least-once):
        // acknowledged as a duplicate, so the new session, which the event would otherwise end, stays.
        var again = await host.LoginAsync("pairwise-" + oid, c => c["oid"] = oid);
        using (var redelivery = await DeliverToTriggerAsync(host, "Notification", delivery))
        {
            Assert.True(redelivery.IsSuccessStatusCode, $"{(int)redelivery.StatusCode}");
        }

        Assert.True(await host.IsActiveAsync(again.AccessToken));
    }

    [Fact]
    public async Task A_malformed_event_fails_its_delivery_with_500_changes_nothing_and_fails_again_when_redelivered()
    {
        var host = await pool.GetAsync(RealFunctionsHostPool.IdpEvents);
        var (valid, validLogin) = await LoginAsync(host);
        var (named, namedLogin) = await LoginAsync(host);
        var malformed = EventGridEvent(IdpEventTypes.AccountDisabled, named);
        malformed["eventTime"] = "yesterday"; // unreadable: the event must be refused whole, so its user keeps the session
        var batch = new JsonArray { EventGridEvent(IdpEventTypes.AccountDisabled, valid), malformed }.ToJsonString();

        // The host splits the batch and calls the function once per event: the valid event is its own unit and is
        // applied; the malformed one throws before changing anything, and the host answers 500 so that Event Grid
        // delivers the batch again (and dead-letters it after its retries).
        using (var response = await DeliverToTriggerAsync(host, "Notification", batch))
        {
            Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        }

        await AssertSessionEndedAsync(host, validLogin);
        Assert.True(await host.IsActiveAsync(namedLogin.AccessToken));

        using (var redelivery = await DeliverToTriggerAsync(host, "Notification", batch))
        {
            Assert.Equal(HttpStatusCode.InternalServerError, redelivery.StatusCode);
        }

        Assert.True(await host.IsActiveAsync(namedLogin.AccessToken));
        using var refresh = await host.RefreshAsync(namedLogin.RefreshToken);
        Assert.Equal(HttpStatusCode.OK, refresh.StatusCode);
    }

    [Fact]
    public async Task The_cleanup_timer_runs_through_the_admin_api()
    {
        var host = await pool.GetAsync(RealFunctionsHostPool.Timers);
        await RunTimerAsync(host, "ExpiredStateCleanup");
    }

    [Fact]
    public async Task The_rotation_timer_publishes_a_new_key_before_it_signs_and_then_signs_with_it()
    {
        var host = await pool.GetAsync(RealFunctionsHostPool.Timers);
        var first = await SigningKidAsync(host);
        Assert.Contains(first, await PublishedKidsAsync(host));

        // Run the rotation check until the next key signs. Every token's key must have been in the JWKS fetched
        // before the token was issued: a key is published (for Keys:PropagationTime) before it is used.
        var deadline = DateTime.UtcNow + Guard;
        var created = false;
        while (true)
        {
            Assert.True(DateTime.UtcNow < deadline, "no new signing key within one rotation interval (hang guard)\n" + host.RealHost.Tail());
            await RunTimerAsync(host, "KeyRotationCheck");
            var published = await PublishedKidsAsync(host);
            created |= published.Count > 1;
            var signing = await SigningKidAsync(host);
            Assert.Contains(signing, published);
            if (signing != first)
            {
                break;
            }

            await Task.Delay(TimeSpan.FromSeconds(2));
        }

        Assert.True(created, "the new key signed without having been published first");
    }

    private static async Task<string> SigningKidAsync(TokenServiceTestHost host)
    {
        var login = await host.LoginAsync("timer-" + Guid.NewGuid().ToString("N"));
        return new JsonWebToken(login.AccessToken).Kid;
    }

    private static async Task<HashSet<string>> PublishedKidsAsync(TokenServiceTestHost host)
    {
        using var response = await host.Client.GetAsync("/.well-known/jwks.json");
        response.EnsureSuccessStatusCode();
        return (await JsonAsync(response)).GetProperty("keys").EnumerateArray().Select(k => k.GetProperty("kid").GetString()!).ToHashSet(StringComparer.Ordinal);
    }

    /// <summary>Runs a timer function through the admin API and waits for the host to log that it succeeded.</summary>
    private static async Task RunTimerAsync(TokenServiceTestHost host, string function)
    {
        var before = CountInLog(host, $"Executed 'Functions.{function}' (Succeeded");
        using (var response = await host.Client.PostAsJsonAsync("/admin/functions/" + function, new { input = string.Empty }))
        {
            Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        }

        var deadline = DateTime.UtcNow + Guard;
        while (CountInLog(host, $"Executed 'Functions.{function}' (Succeeded") == before)
        {
            Assert.True(DateTime.UtcNow < deadline, $"{function} did not succeed (hang guard)\n" + host.RealHost.Tail());
            Assert.DoesNotContain($"Executed 'Functions.{function}' (Failed", host.RealHost.Tail(400), StringComparison.Ordinal);
            await Task.Delay(200);
        }
    }

    private static int CountInLog(TokenServiceTestHost host, string text)
    {
        using var stream = new FileStream(host.RealHost.LogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var reader = new StreamReader(stream);
        var log = reader.ReadToEnd();
        var count = 0;
        for (var i = log.IndexOf(text, StringComparison.Ordinal); i >= 0; i = log.IndexOf(text, i + text.Length, StringComparison.Ordinal))
        {
            count++;
        }

        return count;
    }

    /// <summary>The header Event Grid sets on a delivery of events (as opposed to its subscription handshake).</summary>
    private sealed class NotificationDeliveryPolicy : HttpPipelineSynchronousPolicy
    {
        public override void OnSendingRequest(HttpMessage message) => message.Request.Headers.SetValue("aeg-event-type", "Notification");
    }
}
