using System.Net;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using TokenService.Diagnostics;
using TokenService.Endpoints;
using TokenService.Sessions;
using TokenService.Tests.Infrastructure;

namespace TokenService.Tests.Observability;

/// <summary>
/// What the hosts log: never the webhook secret of a <c>?key=</c> query string, even with every category at Trace
/// and <c>/healthz</c>'s failing dependency with its cause, once per change of state (docs/api.md, "GET /healthz").
/// </summary>
public sealed class LogSafetyAndHealthLogTests
{
    [Theory]
    [InlineData(HostKind.Standalone)]
    [InlineData(HostKind.Functions)]
    public async Task No_log_line_at_any_level_carries_the_webhook_key_of_a_query_string(HostKind kind)
    {
        var capture = new CapturingLoggerProvider();
        await using var host = await TokenServiceTestHost.StartAsync(kind, new Dictionary<string, string?> { ["Logging:LogLevel:Default"] = "Trace" }, services: s =>
        {
            capture.AddTo(s);
            s.Configure<LoggerFilterOptions>(o =>
            {
                // The worst configuration: everything at Trace, ASP.NET Core's request lines asked for by name too.
                o.MinLevel = LogLevel.Trace;
                o.Rules.Add(new LoggerFilterRule(null, "Microsoft", LogLevel.Trace, null));
                o.Rules.Add(new LoggerFilterRule(typeof(CapturingLoggerProvider).FullName, "Microsoft.AspNetCore", LogLevel.Trace, null));
                o.Rules.Add(new LoggerFilterRule(typeof(CapturingLoggerProvider).FullName, RequestLineLogFilter.Category, LogLevel.Trace, null));
            });
        });

        using var request = new HttpRequestMessage(HttpMethod.Post, "/events/idp?key=" + TokenServiceTestHost.WebhookSecret)
        {
            Content = new StringContent("[]", Encoding.UTF8, "application/json"),
        };
        using var response = await host.Client.SendAsync(request);
        Assert.NotEqual(HttpStatusCode.Unauthorized, response.StatusCode); // the key was read from the query

        var factory = host.Services.GetRequiredService<ILoggerFactory>();
        Assert.True(factory.CreateLogger("Microsoft.AspNetCore.Routing").IsEnabled(LogLevel.Trace), "the test must run with ASP.NET Core at Trace");
        Assert.False(factory.CreateLogger(RequestLineLogFilter.Category).IsEnabled(LogLevel.Error));
        Assert.DoesNotContain(capture.Entries, e => e.Message.Contains(TokenServiceTestHost.WebhookSecret, StringComparison.Ordinal));
        Assert.DoesNotContain(capture.Entries, e => e.Message.Contains("key=", StringComparison.OrdinalIgnoreCase));
    }

    [Theory]
    [InlineData(HostKind.Standalone)]
    [InlineData(HostKind.Functions)]
    public async Task A_failing_health_dependency_is_logged_with_its_cause_once_and_its_recovery_once(HostKind kind)
    {
        var time = new FakeTimeProvider(DateTimeOffset.Parse("2025-03-01T08:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        var capture = new CapturingLoggerProvider();
        var store = new FailingProbeStore(new InMemorySessionStore());
        await using var host = await TokenServiceTestHost.StartAsync(kind, time: time, services: s =>
        {
            capture.AddTo(s);
            s.AddSingleton<ISessionStore>(store);
        });

        async Task<HttpStatusCode> ProbeAsync()
        {
            time.Advance(HealthEndpoint.CacheFor + TimeSpan.FromSeconds(1)); // past the cached answer: a real probe
            using var response = await host.Client.GetAsync("/healthz");
            return response.StatusCode;
        }

        IReadOnlyList<CapturedLog> Health(int id) => capture.Entries.Where(e => e.Category == typeof(HealthEndpoint).FullName && e.Id.Id == id).ToList();

        Assert.Equal(HttpStatusCode.OK, await ProbeAsync());
        store.Failing = true;
        Assert.Equal(HttpStatusCode.ServiceUnavailable, await ProbeAsync());
        Assert.Equal(HttpStatusCode.ServiceUnavailable, await ProbeAsync());
        var unavailable = Assert.Single(Health(1301));
        Assert.Equal(LogLevel.Warning, unavailable.Level);
        Assert.Contains("store", unavailable.Message, StringComparison.Ordinal);
        Assert.Contains(typeof(IOException).FullName!, unavailable.Message, StringComparison.Ordinal);
        Assert.Empty(Health(1302));

        store.Failing = false;
        Assert.Equal(HttpStatusCode.OK, await ProbeAsync());
        Assert.Equal(HttpStatusCode.OK, await ProbeAsync());
        Assert.Contains("store", Assert.Single(Health(1302)).Message, StringComparison.Ordinal);
        Assert.Single(Health(1301));
    }

    /// <summary>The in-memory store whose reads fail, as the Table adapter reports an outage, while <see cref="Failing"/>.</summary>
    private sealed class FailingProbeStore(ISessionStore inner) : ISessionStore
    {
        public volatile bool Failing;

        public ValueTask<SessionRecord?> GetSessionAsync(string sessionId, CancellationToken cancellationToken) =>
            Failing ? throw new DependencyUnavailableException("storage", "injected outage", innerException: new IOException("connection reset")) : inner.GetSessionAsync(sessionId, cancellationToken);

        public ValueTask<UserSessions> GetUserSessionsAsync(string userId, CancellationToken cancellationToken) => inner.GetUserSessionsAsync(userId, cancellationToken);

        public ValueTask<StoreWriteResult> ReplaceSessionAsync(SessionRecord updated, CancellationToken cancellationToken) => inner.ReplaceSessionAsync(updated, cancellationToken);

        public ValueTask<StoreWriteStatus> CommitAsync(UserSessionsChange change, CancellationToken cancellationToken) => inner.CommitAsync(change, cancellationToken);
    }
}
