using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Http;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using TokenService.SharedSignals;
using TokenService.Tests.Infrastructure;
using static TokenService.Tests.Infrastructure.TokenServiceTestHost;

namespace TokenService.Tests.SharedSignals;

/// <summary>
/// <see cref="SharedSignalsHostFixture"/> whose push HttpClient (<see cref="SsfPushDeliveryService.HttpClientName"/>)
/// reaches <see cref="Receiver"/> instead of the network, so a stream may push to https://receiver.example. The
/// in-process Functions app is built and not run (<see cref="FunctionsAppFactory"/>), so its hosted push service is
/// started here, as the worker's host would start it.
/// </summary>
public class SharedSignalsPushHostFixture : SharedSignalsHostFixture
{
    public PushReceiver Receiver { get; } = new(TimeProvider.System);

    /// <summary>The host's service registrations (the callback gets the collection the host then completes).</summary>
    public IServiceCollection Registrations { get; private set; } = null!;

    protected override async Task<TokenServiceTestHost> StartHostAsync()
    {
        var host = await TokenServiceTestHost.StartAsync(Kind, Settings, services: s =>
        {
            Registrations = s;
            s.PostConfigure<HttpClientFactoryOptions>(SsfPushDeliveryService.HttpClientName, o => o.HttpMessageHandlerBuilderActions.Add(b => b.PrimaryHandler = Receiver));
        });
        if (Kind == HostKind.Functions)
        {
            // Started as the worker's host starts its hosted services (resolving them all here would build the
            // worker's gRPC client too); stopped when the host's services are disposed (BackgroundService.Dispose).
            await host.Services.GetRequiredService<SsfPushDeliveryService>().StartAsync(default);
        }

        return host;
    }
}

public sealed class SharedSignalsPushFunctionsHostFixture : SharedSignalsPushHostFixture
{
    protected override HostKind Kind => HostKind.Functions;
}

public sealed class SharedSignalsPushTests(SharedSignalsPushHostFixture fixture) : SharedSignalsPushTests<SharedSignalsPushHostFixture>(fixture);

public sealed class SharedSignalsPushTestsOnFunctions(SharedSignalsPushFunctionsHostFixture fixture) : SharedSignalsPushTests<SharedSignalsPushFunctionsHostFixture>(fixture);

/// <summary>Push delivery (RFC 8935) through HTTP on both hosts: a stream configured for push, and a session's end pushed to it.</summary>
public abstract class SharedSignalsPushTests<TFixture>(TFixture fixture) : IClassFixture<TFixture>
    where TFixture : SharedSignalsPushHostFixture
{
    private const string Endpoint = "https://receiver.example/ssf/events";

    private TokenServiceTestHost Host => fixture.Host;

    [Fact]
    public async Task A_force_logout_is_pushed_to_the_receivers_endpoint_as_a_signed_session_revoked_set()
    {
        var stream = await CreatePushStreamAsync();
        var login = await Host.LoginAsync("ssf-pushed", audience: "api://orders");
        var sid = new JsonWebToken(login.AccessToken).GetPayloadValue<string>("sid");
        using (var revoke = await Host.PostFormAsync("/management/users/revoke", [new("user_id", "ssf-pushed")], Basic("ops", OpsSecret)))
        {
            Assert.Equal(HttpStatusCode.OK, revoke.StatusCode);
        }

        PushedRequest pushed;
        do
        {
            pushed = await fixture.Receiver.NextAsync();
        }
        while (SessionOf(pushed.Body) != sid);

        Assert.Equal(Endpoint, pushed.Url.OriginalString);
        Assert.Equal("application/secevent+jwt", pushed.ContentType);
        Assert.Equal("application/json", pushed.Accept);
        Assert.Equal("Bearer push-secret", pushed.Authorization);

        using var jwks = await Host.Client.GetAsync("/.well-known/jwks.json");
        var result = await new JsonWebTokenHandler().ValidateTokenAsync(pushed.Body, new TokenValidationParameters
        {
            ValidIssuer = Issuer,
            ValidAudience = "api://orders",
            IssuerSigningKeys = new JsonWebKeySet(await jwks.Content.ReadAsStringAsync()).GetSigningKeys(),
            ValidTypes = ["secevent+jwt"],
            RequireExpirationTime = false,
            ValidateLifetime = false,
        });
        Assert.True(result.IsValid, result.Exception?.Message);
        var events = ((JsonWebToken)result.SecurityToken).GetPayloadValue<object>("events").ToString()!.Replace(" ", string.Empty, StringComparison.Ordinal);
        Assert.Contains("session-revoked", events, StringComparison.Ordinal);
        Assert.Contains("\"initiating_entity\":\"admin\"", events, StringComparison.Ordinal);

        // Delivered (202): the outbox no longer holds it, and a push stream cannot be polled.
        using var poll = await SendAsync(HttpMethod.Post, "/ssf/poll/" + stream, "{}");
        Assert.Equal(HttpStatusCode.BadRequest, poll.StatusCode);
        Assert.Equal("application/problem+json", poll.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public void The_push_service_is_a_hosted_service_of_the_host()
    {
        // The IHostedService registered by the token service's own registrations (not the worker's) is the push service.
        var hosted = fixture.Registrations
            .Where(d => d.ServiceType == typeof(Microsoft.Extensions.Hosting.IHostedService) && d.ImplementationFactory is not null
                && d.ImplementationFactory.Method.DeclaringType?.FullName?.StartsWith("TokenService.Hosting.", StringComparison.Ordinal) == true)
            .Select(d => d.ImplementationFactory!(Host.Services))
            .ToList();
        Assert.Same(Host.Services.GetRequiredService<SsfPushDeliveryService>(), Assert.Single(hosted.OfType<SsfPushDeliveryService>()));
    }

    [Fact]
    public async Task A_push_stream_reads_back_its_endpoint_without_its_authorization_header_and_can_turn_to_poll()
    {
        var stream = await CreatePushStreamAsync();
        using var read = await SendAsync(HttpMethod.Get, "/ssf/streams?stream_id=" + stream, null);
        var delivery = (await JsonAsync(read)).GetProperty("delivery");
        Assert.Equal("urn:ietf:rfc:8935", delivery.GetProperty("method").GetString());
        Assert.Equal(Endpoint, delivery.GetProperty("endpoint_url").GetString());
        Assert.False(delivery.TryGetProperty("authorization_header", out _));

        using var patched = await SendAsync(HttpMethod.Patch, "/ssf/streams", $$$"""{"stream_id":"{{{stream}}}","delivery":{"method":"urn:ietf:rfc:8936"}}""");
        Assert.Equal(HttpStatusCode.OK, patched.StatusCode);
        var poll = (await JsonAsync(patched)).GetProperty("delivery");
        Assert.Equal("urn:ietf:rfc:8936", poll.GetProperty("method").GetString());
        Assert.Equal(Issuer + "/ssf/poll/" + stream, poll.GetProperty("endpoint_url").GetString());
        using var polled = await SendAsync(HttpMethod.Post, "/ssf/poll/" + stream, "{}");
        Assert.Equal(HttpStatusCode.OK, polled.StatusCode);
    }

    [Fact]
    public async Task An_http_endpoint_even_on_loopback_is_refused_outside_Development()
    {
        await CreatePushStreamAsync();
        using var list = await SendAsync(HttpMethod.Get, "/ssf/streams", null);
        var stream = (await JsonAsync(list))[0].GetProperty("stream_id").GetString();
        using var patched = await SendAsync(HttpMethod.Patch, "/ssf/streams",
            $$$"""{"stream_id":"{{{stream}}}","delivery":{"method":"urn:ietf:rfc:8935","endpoint_url":"http://127.0.0.1:9000/events"}}""");
        Assert.Equal(HttpStatusCode.BadRequest, patched.StatusCode);
        Assert.Equal("application/problem+json", patched.Content.Headers.ContentType?.MediaType);
        using var read = await SendAsync(HttpMethod.Get, "/ssf/streams?stream_id=" + stream, null);
        Assert.Equal(Endpoint, (await JsonAsync(read)).GetProperty("delivery").GetProperty("endpoint_url").GetString());
    }

    private async Task<string> CreatePushStreamAsync()
    {
        using (var list = await SendAsync(HttpMethod.Get, "/ssf/streams", null))
        {
            foreach (var existing in (await JsonAsync(list)).EnumerateArray())
            {
                using var deleted = await SendAsync(HttpMethod.Delete, "/ssf/streams?stream_id=" + existing.GetProperty("stream_id").GetString(), null);
                Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
            }
        }

        using var created = await SendAsync(HttpMethod.Post, "/ssf/streams",
            $$$"""{"delivery":{"method":"urn:ietf:rfc:8935","endpoint_url":"{{{Endpoint}}}","authorization_header":"Bearer push-secret"}}""");
        var json = await JsonAsync(created);
        Assert.True(created.StatusCode == HttpStatusCode.Created, json.ToString());
        return json.GetProperty("stream_id").GetString()!;
    }

    private async Task<HttpResponseMessage> SendAsync(HttpMethod method, string path, string? json)
    {
        using var request = new HttpRequestMessage(method, path);
        request.Headers.Authorization = Basic("api", ApiSecret);
        if (json is not null)
        {
            request.Content = new StringContent(json, Encoding.UTF8, "application/json");
        }

        return await Host.Client.SendAsync(request);
    }

    private static string? SessionOf(string set)
    {
        var token = new JsonWebToken(set);
        return token.TryGetPayloadValue<object>("sub_id", out var subId)
            && JsonDocument.Parse(subId.ToString()!).RootElement.TryGetProperty("session", out var session)
            ? session.GetProperty("id").GetString()
            : null;
    }
}
