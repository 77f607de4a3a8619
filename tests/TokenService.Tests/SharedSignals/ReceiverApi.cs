using System.Net;
using System.Net.Http.Headers;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using TokenService.Tests.Infrastructure;
using TokenService.Validation;

namespace TokenService.Tests.SharedSignals;

/// <summary>
/// A resource server's back channel to a test host (over loopback to the standalone host, in-process to the Functions
/// app) that counts introspection requests and can play the token service being down or its polls failing.
/// </summary>
public sealed class CountingBackchannel(TokenServiceTestHost host)
    : DelegatingHandler(host.Kind == HostKind.Functions ? new FunctionsHttpHandler(host.Services) : new SocketsHttpHandler())
{
    private int _introspections;
    private int _sharedSignals;

    public int Introspections => Volatile.Read(ref _introspections);

    /// <summary>Requests to the SSF metadata, the stream API and the poll endpoint.</summary>
    public int SharedSignalsRequests => Volatile.Read(ref _sharedSignals);

    /// <summary>Every request fails as a refused connection does.</summary>
    public bool Down { get; set; }

    /// <summary>Polls (RFC 8936) answer 503; everything else works.</summary>
    public bool FailPolls { get; set; }

    /// <summary>
    /// The next poll answer that carries a SET has the signature of its first SET altered on the way (its jti in
    /// <see cref="Altered"/>), as a tampering path would.
    /// </summary>
    public bool AlterNextPolledSet { get; set; }

    /// <summary>The jti of the SET <see cref="AlterNextPolledSet"/> altered.</summary>
    public string? Altered { get; private set; }

    /// <summary>The bodies of the polls sent, in order.</summary>
    public System.Collections.Concurrent.ConcurrentQueue<string> Polls { get; } = new();

    /// <summary>The jti of every SET the poll answers carried, once per delivery.</summary>
    public System.Collections.Concurrent.ConcurrentQueue<string> Polled { get; } = new();

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var path = request.RequestUri!.AbsolutePath;
        if (!path.StartsWith("/ssf/poll/", StringComparison.Ordinal) || Down || FailPolls)
        {
            return await ForwardAsync(request, cancellationToken);
        }

        Polls.Enqueue(request.Content is null ? string.Empty : await request.Content.ReadAsStringAsync(cancellationToken));
        var response = await ForwardAsync(request, cancellationToken);
        if (response.StatusCode != HttpStatusCode.OK)
        {
            return response;
        }

        var answer = System.Text.Json.Nodes.JsonNode.Parse(await response.Content.ReadAsStringAsync(cancellationToken))!.AsObject();
        if (answer["sets"] is System.Text.Json.Nodes.JsonObject sets && sets.Count > 0)
        {
            foreach (var (jti, _) in sets)
            {
                Polled.Enqueue(jti);
            }

            if (AlterNextPolledSet)
            {
                AlterNextPolledSet = false;
                var (jti, set) = sets.First();
                var compact = set!.GetValue<string>();
                var at = compact.LastIndexOf('.') + 10; // inside the signature, away from its last character's spare bits
                sets[jti] = compact[..at] + (compact[at] == 'A' ? 'B' : 'A') + compact[(at + 1)..];
                Altered = jti;
            }
        }

        var altered = new HttpResponseMessage(response.StatusCode) { RequestMessage = request, Content = new StringContent(answer.ToJsonString()) };
        altered.Content.Headers.ContentType = response.Content.Headers.ContentType;
        response.Dispose();
        return altered;
    }

    private Task<HttpResponseMessage> ForwardAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var path = request.RequestUri!.AbsolutePath;
        if (path == "/oauth2/introspect")
        {
            Interlocked.Increment(ref _introspections);
        }
        else if (path.StartsWith("/ssf/", StringComparison.Ordinal) || path == "/.well-known/ssf-configuration")
        {
            Interlocked.Increment(ref _sharedSignals);
        }

        if (Down)
        {
            throw new HttpRequestException("The token service is down (test).", null, HttpStatusCode.ServiceUnavailable);
        }

        if (FailPolls && path.StartsWith("/ssf/poll/", StringComparison.Ordinal))
        {
            return Task.FromResult(new HttpResponseMessage(HttpStatusCode.ServiceUnavailable) { RequestMessage = request });
        }

        var target = host.BaseAddress;
        request.RequestUri = new UriBuilder(request.RequestUri) { Scheme = target.Scheme, Host = target.Host, Port = target.Port }.Uri;
        return base.SendAsync(request, cancellationToken);
    }
}

/// <summary>
/// An API on the library with the Shared Signals receiver on, as an API team writes it, on a fake clock: Kestrel on
/// loopback, <c>GET /orders</c> behind JwtBearer and the session check.
/// </summary>
public sealed class ReceiverApi : IAsyncDisposable
{
    private readonly WebApplication _app;

    private ReceiverApi(WebApplication app, HttpClient client, CountingBackchannel backchannel, CapturingLoggerProvider logs)
    {
        (_app, Client, Backchannel, Logs) = (app, client, backchannel, logs);
        Receiver = app.Services.GetRequiredKeyedService<SharedSignalsReceiver>(JwtBearerDefaults.AuthenticationScheme);
    }

    public HttpClient Client { get; }

    public CountingBackchannel Backchannel { get; }

    /// <summary>What the API logged (the library's categories at every level).</summary>
    public CapturingLoggerProvider Logs { get; }

    internal SharedSignalsReceiver Receiver { get; }

    public static async Task<ReceiverApi> StartAsync(
        TokenServiceTestHost host, SharedSignalsDelivery delivery, FakeTimeProvider time, TimeSpan statusCache,
        TimeSpan? verificationInterval = null, Action<CountingBackchannel>? before = null, string description = "receiver tests", TimeSpan? clockSkew = null)
    {
        var backchannel = new CountingBackchannel(host);
        before?.Invoke(backchannel);
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        var logs = new CapturingLoggerProvider();
        logs.AddTo(builder.Services);
        builder.Services.AddAuthentication(JwtBearerDefaults.AuthenticationScheme)
            .AddJwtBearer(o =>
            {
                o.Authority = ResourceServerSetup.Authority;
                o.Audience = "api://orders";
                o.MapInboundClaims = false;
                o.BackchannelHttpHandler = backchannel;
                o.TokenValidationParameters.ClockSkew = clockSkew ?? TimeSpan.FromSeconds(30);
                o.TimeProvider = time;
            })
            .AddTokenServiceSessionCheck(o =>
            {
                o.ClientId = "api";
                o.ClientSecret = TokenServiceTestHost.ApiSecret;
                o.PublicOrigin = ResourceServerSetup.PublicOrigin;
                o.StatusCacheDuration = statusCache;
                o.SharedSignals.Delivery = delivery;
                o.SharedSignals.StreamDescription = description;
                if (verificationInterval is { } interval)
                {
                    o.SharedSignals.VerificationInterval = interval;
                }
            });
        builder.Services.AddAuthorization();
        builder.Services.AddHealthChecks().AddTokenServiceSharedSignals();
        var app = builder.Build();
        app.UseAuthentication();
        app.UseAuthorization();
        app.MapGet("/orders", (HttpContext ctx) => Results.Ok(new { sub = ctx.User.FindFirst("sub")?.Value })).RequireAuthorization();
        app.MapHealthChecks("/health");
        return new ReceiverApi(app, new HttpClient { BaseAddress = await Loopback.StartAsync(app) }, backchannel, logs);
    }

    public async Task<HttpStatusCode> GetOrdersAsync(string token)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/orders");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using var response = await Client.SendAsync(request);
        return response.StatusCode;
    }

    /// <summary>The API's health endpoint: its status code and the overall status it writes (Healthy, Degraded, Unhealthy).</summary>
    public async Task<(HttpStatusCode Status, string Body)> HealthAsync()
    {
        using var response = await Client.GetAsync("/health");
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    /// <summary>Waits (a hang guard of 20 s, no clock) until <paramref name="condition"/> holds after a receiver cycle or SET.</summary>
    public Task WaitForAsync(Func<bool> condition) => Receiver.WaitAsync(condition).WaitAsync(TimeSpan.FromSeconds(20));

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
