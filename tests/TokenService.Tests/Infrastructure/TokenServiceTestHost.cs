using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using TokenService.Hosting;
using TokenService.Server;

namespace TokenService.Tests.Infrastructure;

/// <summary>Which host a test runs against.</summary>
public enum HostKind
{
    /// <summary>The standalone ASP.NET Core host on Kestrel at 127.0.0.1, port 0.</summary>
    Standalone,

    /// <summary>The Azure Functions app, built as Program.cs builds it, its HTTP functions invoked in-process.</summary>
    Functions,

    /// <summary>
    /// The published Functions app under a real Azure Functions host, in its own processes (<see cref="RealFunctionsHost"/>):
    /// nothing in-process (services, clock, logs) can be reached.
    /// </summary>
    RealFunctionsHost,
}

/// <summary>
/// The real standalone host on Kestrel at 127.0.0.1, port 0, or the Functions app in-process
/// (<see cref="StartFunctionsAsync"/>), configured only through the contract's configuration keys, with a test
/// IdP. Clients: spa "spa" (origin https://app.test), confidential "web", confidential "other-web", resource
/// server "api" (audience api://orders), admin "ops". "spa" and "web" may also ask for tokens for the session
/// endpoints (audience = <see cref="Issuer"/>).
/// </summary>
public sealed class TokenServiceTestHost : IAsyncDisposable
{
    public const string Issuer = "https://tokens.test.example";
    public const string SpaOrigin = "https://app.test";
    public const string WebSecret = "web-secret-123";
    public const string WebDisplayName = "Orders & <billing> portal";
    public const string OtherWebSecret = "other-web-secret-123";
    public const string ApiSecret = "api-secret-123";
    public const string OpsSecret = "ops-secret-123";
    public const string WebhookSecret = "webhook-secret-123";

    private readonly Microsoft.Extensions.Hosting.IHost? _app;
    private readonly RealFunctionsHost? _realHost;
    private readonly string _keyPath;

    private TokenServiceTestHost(Microsoft.Extensions.Hosting.IHost? app, TestIdp idp, Uri baseAddress, string keyPath, HttpMessageHandler handler, HostKind kind, RealFunctionsHost? realHost = null)
    {
        _app = app;
        _realHost = realHost;
        Idp = idp;
        BaseAddress = baseAddress;
        _keyPath = keyPath;
        Kind = kind;
        Client = new HttpClient(handler) { BaseAddress = baseAddress };
    }

    public TestIdp Idp { get; }
    public Uri BaseAddress { get; }
    public HttpClient Client { get; }
    public HostKind Kind { get; }
    public IServiceProvider Services => _app?.Services
        ?? throw new NotSupportedException("The real Functions host runs the app in another process: its services cannot be reached from the test.");

    /// <summary>The real Functions host's processes and log (<see cref="HostKind.RealFunctionsHost"/> only).</summary>
    public RealFunctionsHost RealHost => _realHost ?? throw new InvalidOperationException("Not a real Functions host.");

    /// <summary>
    /// Set on a real Functions host that a pool shares between test classes: disposing this wrapper leaves it running,
    /// and the pool stops it (<see cref="DisposeSharedAsync"/>).
    /// </summary>
    public bool Shared { get; init; }

    /// <summary>Starts the host of <paramref name="kind"/> with the default test configuration plus <paramref name="settings"/>.</summary>
    public static Task<TokenServiceTestHost> StartAsync(
        HostKind kind, IDictionary<string, string?>? settings = null, TimeProvider? time = null, TestIdp? idp = null, Action<IServiceCollection>? services = null) =>
        kind switch
        {
            HostKind.Functions => StartFunctionsAsync(settings, time: time, idp: idp, services: services),
            HostKind.RealFunctionsHost when time is not null || services is not null =>
                throw new NotSupportedException("The real Functions host runs in its own process: a test clock or test services cannot be injected."),
            HostKind.RealFunctionsHost => StartRealFunctionsHostAsync(settings, idp: idp),
            _ => StartAsync(settings, configure: services is null ? null : b => services(b.Services), time: time, idp: idp),
        };

    /// <summary>
    /// The published Functions app under a real Functions host (<see cref="RealFunctionsHost"/>), with the default test
    /// configuration plus <paramref name="settings"/> as its app settings (<c>Clients:0:ClientId</c> becomes
    /// <c>Clients__0__ClientId</c>, as in local.settings.json and App Service). The host runs in Development, as
    /// <c>func start</c> does.
    /// </summary>
    public static async Task<TokenServiceTestHost> StartRealFunctionsHostAsync(IDictionary<string, string?>? settings = null, TestIdp? idp = null, bool shared = false)
    {
        idp ??= new TestIdp();
        var keyPath = NewKeyPath();
        var values = DefaultSettings(idp, keyPath, settings)
            .ToDictionary(p => p.Key.Replace(":", "__", StringComparison.Ordinal), p => p.Value, StringComparer.Ordinal);
        values["AZURE_FUNCTIONS_ENVIRONMENT"] = "Development";
        RealFunctionsHost realHost;
        try
        {
            realHost = await RealFunctionsHost.StartAsync(values);
        }
        catch
        {
            idp.Dispose();
            throw;
        }

        return new TokenServiceTestHost(null, idp, realHost.BaseAddress, keyPath, new LastUsedHandler(realHost, RealHostSocketsHandler(null)), HostKind.RealFunctionsHost, realHost)
        {
            Shared = shared,
        };
    }

    public static async Task<TokenServiceTestHost> StartAsync(
        IDictionary<string, string?>? settings = null, Action<WebApplicationBuilder>? configure = null, TimeProvider? time = null, TestIdp? idp = null)
    {
        idp ??= new TestIdp(time);
        var keyPath = NewKeyPath();
        var config = DefaultSettings(idp, keyPath, settings);
        var app = TokenServiceHost.Build(["--environment", "Testing", "--urls", "http://127.0.0.1:0"], builder =>
        {
            builder.Configuration.AddInMemoryCollection(config);
            builder.Logging.SetMinimumLevel(Microsoft.Extensions.Logging.LogLevel.Warning);
            builder.Services.AllowLocalSigningKeyOutsideDevelopment(); // "Testing" with a throw-away local key
            builder.Services.AllowInMemorySessionsOutsideDevelopment(); // and sessions in memory unless a test sets Storage
            if (time is not null)
            {
                builder.Services.AddSingleton(time);
            }

            configure?.Invoke(builder);
        });
        var address = await Loopback.StartAsync(app);
        return new TokenServiceTestHost(app, idp, address, keyPath, new HttpClientHandler { UseCookies = false, AllowAutoRedirect = false }, HostKind.Standalone);
    }

    /// <summary>
    /// The Functions app built the way its Program.cs builds it (FunctionsApplication builder, ASP.NET Core
    /// integration, <c>AddTokenFunctions</c>), not started (the Functions host cannot run here): its HTTP functions
    /// are invoked in-process by <see cref="FunctionsHttpHandler"/>.
    /// </summary>
    public static async Task<TokenServiceTestHost> StartFunctionsAsync(
        IDictionary<string, string?>? settings = null, string environment = "Testing", TimeProvider? time = null, TestIdp? idp = null, Action<IServiceCollection>? services = null)
    {
        idp ??= new TestIdp(time);
        var keyPath = NewKeyPath();
        var config = DefaultSettings(idp, keyPath, settings);
        var host = FunctionsAppFactory.Build(environment, config, s =>
        {
            s.AllowLocalSigningKeyOutsideDevelopment(); // "Testing" with a throw-away local key
            s.AllowInMemorySessionsOutsideDevelopment(); // and sessions in memory unless a test sets Storage
            if (time is not null)
            {
                s.AddSingleton(time);
            }

            services?.Invoke(s);
        });
        await FunctionsAppFactory.ValidateStartupAsync(host);
        var baseAddress = new Uri("http://functions.test/");
        return new TokenServiceTestHost(host, idp, baseAddress, keyPath, new FunctionsHttpHandler(host.Services), HostKind.Functions);
    }

    /// <summary>
    /// A client whose requests come from <paramref name="address"/> (a loopback address such as 127.0.0.2): the
    /// standalone host sees the socket's bound source address, the Functions app the address its handler passes on.
    /// </summary>
    public HttpClient CreateClientFrom(IPAddress address)
    {
        HttpMessageHandler handler = Kind switch
        {
            HostKind.Functions => new FunctionsHttpHandler(Services) { RemoteIpAddress = address },
            HostKind.RealFunctionsHost => new LastUsedHandler(RealHost, RealHostSocketsHandler(address)),
            _ => RealHostSocketsHandler(address),
        };
        return new HttpClient(handler) { BaseAddress = BaseAddress };
    }

    /// <summary>A socket handler without cookies or redirects, its connections from <paramref name="source"/> when given.</summary>
    private static SocketsHttpHandler RealHostSocketsHandler(IPAddress? source) => new()
    {
        UseCookies = false,
        AllowAutoRedirect = false,
        ConnectCallback = source is null ? null : async (context, cancellationToken) =>
        {
            var socket = new System.Net.Sockets.Socket(source.AddressFamily, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp) { NoDelay = true };
            try
            {
                socket.Bind(new IPEndPoint(source, 0));
                await socket.ConnectAsync(context.DnsEndPoint, cancellationToken);
                return new System.Net.Sockets.NetworkStream(socket, ownsSocket: true);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        },
    };

    /// <summary>Marks the real host a request went to, so that a failing test prints that host's log.</summary>
    private sealed class LastUsedHandler(RealFunctionsHost host, HttpMessageHandler inner) : DelegatingHandler(inner)
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            RealFunctionsHost.LastUsed = host;
            return base.SendAsync(request, cancellationToken);
        }
    }

    private static string NewKeyPath() => Path.Combine(Path.GetTempPath(), "ts-keys-" + Guid.NewGuid().ToString("N"), "signing-keys.json");

    private static Dictionary<string, string?> DefaultSettings(TestIdp idp, string keyPath, IDictionary<string, string?>? settings)
    {
        var config = new Dictionary<string, string?>
        {
            ["TokenService:Issuer"] = Issuer,
            // Wall-clock tests run on a loaded 2-core machine: the largest budgets, so a slow first key generation
            // is never read as an outage. The budget tests set the defaults explicitly and run on a fake clock.
            ["TokenService:DependencyBudget"] = "00:01:00",
            ["TokenService:HealthProbeBudget"] = "00:00:10",
            ["Idp:Issuer"] = TestIdp.Issuer,
            ["Idp:Audience"] = TestIdp.Audience,
            ["Idp:JwksPath"] = idp.JwksPath,
            ["Keys:DevelopmentKeyPath"] = keyPath,
            ["Events:WebhookSecret"] = WebhookSecret,
            ["Clients:0:ClientId"] = "spa",
            ["Clients:0:Type"] = "spa",
            ["Clients:0:AllowedOrigins:0"] = SpaOrigin,
            ["Clients:0:AllowedAudiences:0"] = "api://orders",
            ["Clients:0:AllowedAudiences:1"] = Issuer,
            ["Clients:0:AllowedScopes:0"] = "orders.read",
            ["Clients:0:AllowedScopes:1"] = "orders.write",
            ["Clients:1:ClientId"] = "web",
            ["Clients:1:Type"] = "confidential",
            ["Clients:1:Secret"] = WebSecret,
            ["Clients:1:DisplayName"] = WebDisplayName,
            ["Clients:1:AllowedAudiences:0"] = "api://orders",
            ["Clients:1:AllowedAudiences:1"] = "api://billing",
            ["Clients:1:AllowedAudiences:2"] = Issuer,
            ["Clients:1:AllowedScopes:0"] = "orders.read",
            ["Clients:1:AllowedScopes:1"] = "orders.write",
            ["Clients:2:ClientId"] = "other-web",
            ["Clients:2:Type"] = "confidential",
            ["Clients:2:Secret"] = OtherWebSecret,
            ["Clients:2:AllowedAudiences:0"] = "api://orders",
            ["Clients:2:AllowedScopes:0"] = "orders.read",
            ["Clients:3:ClientId"] = "api",
            ["Clients:3:Type"] = "resource_server",
            ["Clients:3:Secret"] = ApiSecret,
            ["Clients:3:AllowedAudiences:0"] = "api://orders",
            ["Clients:4:ClientId"] = "ops",
            ["Clients:4:Type"] = "admin",
            ["Clients:4:Secret"] = OpsSecret,
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            config[key] = value;
        }

        return config;
    }

    public async ValueTask DisposeAsync()
    {
        if (!Shared)
        {
            await DisposeSharedAsync();
        }
    }

    /// <summary>Stops the host even when <see cref="Shared"/>: for the pool that owns it.</summary>
    public async ValueTask DisposeSharedAsync()
    {
        Client.Dispose();
        if (_realHost is not null)
        {
            await _realHost.DisposeAsync();
        }

        if (Kind == HostKind.Standalone)
        {
            await _app!.StopAsync();
        }

        if (_app is IAsyncDisposable asyncDisposable)
        {
            await asyncDisposable.DisposeAsync();
        }
        else
        {
            _app?.Dispose();
        }

        Idp.Dispose();
        try
        {
            Directory.Delete(Path.GetDirectoryName(_keyPath)!, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    // ---- protocol helpers -------------------------------------------------------------------------

    public static AuthenticationHeaderValue Basic(string clientId, string secret) =>
        new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(Uri.EscapeDataString(clientId) + ":" + Uri.EscapeDataString(secret))));

    public Task<HttpResponseMessage> PostFormAsync(string path, IEnumerable<KeyValuePair<string, string>> form, AuthenticationHeaderValue? auth = null, string? origin = null, string? cookie = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new FormUrlEncodedContent(form) };
        request.Headers.Authorization = auth;
        if (origin is not null)
        {
            request.Headers.Add("Origin", origin);
        }

        if (cookie is not null)
        {
            request.Headers.Add("Cookie", cookie);
        }

        return Client.SendAsync(request);
    }

    public Task<HttpResponseMessage> ExchangeAsync(string idToken, string clientId = "web", string? secret = WebSecret, params (string Name, string Value)[] extra)
    {
        var form = new List<KeyValuePair<string, string>>
        {
            new("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
            new("subject_token", idToken),
            new("subject_token_type", "urn:ietf:params:oauth:token-type:id_token"),
        };
        form.AddRange(extra.Select(e => new KeyValuePair<string, string>(e.Name, e.Value)));
        if (secret is null)
        {
            form.Add(new("client_id", clientId));
            return PostFormAsync("/oauth2/token", form, origin: SpaOrigin);
        }

        return PostFormAsync("/oauth2/token", form, Basic(clientId, secret));
    }

    public Task<HttpResponseMessage> RefreshAsync(string refreshToken, string clientId = "web", string secret = WebSecret, params (string Name, string Value)[] extra)
    {
        var form = new List<KeyValuePair<string, string>> { new("grant_type", "refresh_token"), new("refresh_token", refreshToken) };
        form.AddRange(extra.Select(e => new KeyValuePair<string, string>(e.Name, e.Value)));
        return PostFormAsync("/oauth2/token", form, Basic(clientId, secret));
    }

    public Task<HttpResponseMessage> IntrospectAsync(string token) =>
        PostFormAsync("/oauth2/introspect", [new("token", token)], Basic("api", ApiSecret));

    public async Task<bool> IsActiveAsync(string accessToken)
    {
        using var response = await IntrospectAsync(accessToken);
        response.EnsureSuccessStatusCode();
        return (await JsonAsync(response)).GetProperty("active").GetBoolean();
    }

    /// <summary>Logs a user in through the web client and returns the token response (for <paramref name="audience"/> when given).</summary>
    public async Task<TokenPair> LoginAsync(string subject, Action<System.Text.Json.Nodes.JsonObject>? claims = null, string clientId = "web", string secret = WebSecret, string? audience = null)
    {
        using var response = await ExchangeAsync(Idp.IdToken(subject, claims), clientId, secret, audience is null ? [] : [("audience", audience)]);
        var json = await JsonAsync(response);
        Assert.True(response.StatusCode == HttpStatusCode.OK, json.ToString());
        return new TokenPair(json.GetProperty("access_token").GetString()!, json.GetProperty("refresh_token").GetString()!);
    }

    public static async Task<JsonElement> JsonAsync(HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync();
        return string.IsNullOrEmpty(text) ? default : JsonDocument.Parse(text).RootElement.Clone();
    }

    /// <summary>Asserts an RFC 6749 §5.2 error: status, JSON error code, no-store, no stack trace.</summary>
    public static async Task AssertOAuthErrorAsync(HttpResponseMessage response, string error, HttpStatusCode status = HttpStatusCode.BadRequest)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == status, $"Expected {(int)status} but got {(int)response.StatusCode}: {body}");
        Assert.StartsWith("application/json", response.Content.Headers.ContentType?.MediaType, StringComparison.Ordinal);
        Assert.Contains("no-store", response.Headers.CacheControl?.ToString() ?? string.Empty, StringComparison.Ordinal);
        using var json = JsonDocument.Parse(body);
        Assert.Equal(error, json.RootElement.GetProperty("error").GetString());
        Assert.False(string.IsNullOrEmpty(json.RootElement.GetProperty("error_description").GetString()));
        Assert.DoesNotContain("   at ", body, StringComparison.Ordinal);
        Assert.DoesNotContain("Exception", body, StringComparison.Ordinal);
    }
}

public sealed record TokenPair(string AccessToken, string RefreshToken);
