using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.FileProviders;
using Microsoft.Extensions.Logging;
using SampleApi;
using TokenService.Server;
using TokenService.Tests.Infrastructure;

namespace TokenService.BrowserTests.Infrastructure;

/// <summary>
/// The four servers of a browser test, each on Kestrel at 127.0.0.1 port 0 and reached by the browser as
/// <c>localhost</c>: the standalone token service (Development, with its development IdP), the sample API
/// (samples/SampleApi), the SPA's static files (samples/spa) and a page of another origin. The token service and
/// the SPA share the site <c>localhost</c> (ports do not make another site), so the SameSite=Strict refresh cookie
/// travels on the SPA's requests; they are different origins, so CORS and the spa client's allowed origin apply.
/// <para>
/// <see cref="StartOnFunctionsHostAsync"/> starts the same servers with the published Functions app under a real
/// Functions host (<see cref="RealFunctionsHost"/>) as the token service, with the same settings as app settings. That
/// token service runs in another process: its clock cannot be moved (<see cref="Time"/> is then the sample API's only)
/// and <see cref="TokenServiceRequests"/> stays empty.
/// </para>
/// </summary>
public sealed class SpaServers : IAsyncDisposable
{
    /// <summary>A fixed issuer, not the URL: the ports are known only once the servers listen (see IssuerRewriteHandler).</summary>
    public const string Issuer = "https://tokens.test.example";
    public const string ApiAudience = "api://orders";
    public const string SpaClientId = "spa";

    /// <summary>What users see of the spa client (<c>Clients:N:DisplayName</c>) on the sessions page.</summary>
    public const string SpaDisplayName = "Orders";
    public const string ApiClientId = "orders-api";
    public const string ApiSecret = "orders-api-secret-123";
    public const string PortalClientId = "staff-portal";
    public const string PortalSecret = "staff-portal-secret-123";
    public const string PortalDisplayName = "Staff portal";

    private readonly List<WebApplication> _apps = [];
    private readonly string _keyDirectory = Path.Combine(Path.GetTempPath(), "spa-browser-keys-" + Guid.NewGuid().ToString("N"));
    private JsonObject _spaConfig = [];
    private RealFunctionsHost? _functionsHost;

    public SystemClockWithOffset Time { get; } = new(); // the servers' clock: real time plus what the tests move it forward by (the browser's own timers are moved by Playwright's clock)

    /// <summary>Every request the token service answered.</summary>
    public RequestLog TokenServiceRequests { get; } = new();
    public Uri TokenService { get; private set; } = null!;
    public Uri Api { get; private set; } = null!;
    public Uri Spa { get; private set; } = null!;

    /// <summary>A page of the same site as the token service (localhost) but another origin.</summary>
    public Uri OtherOrigin { get; private set; } = null!;

    /// <summary>The same page as <see cref="OtherOrigin"/> reached as 127.0.0.1: another site altogether.</summary>
    public Uri OtherSite { get; private set; } = null!;

    /// <summary>Server-side checks (introspection, a confidential client's sign-in), no cookies.</summary>
    public HttpClient Http { get; } = new(new SocketsHttpHandler { UseCookies = false });

    public string SpaOrigin => Origin(Spa);

    /// <summary>The servers with the standalone token service in-process (its clock shifted by <see cref="Time"/>).</summary>
    public static Task<SpaServers> StartAsync() => StartAsync(onFunctionsHost: false);

    /// <summary>The servers with the Functions app under a real Functions host as the token service.</summary>
    public static Task<SpaServers> StartOnFunctionsHostAsync() => StartAsync(onFunctionsHost: true);

    private static async Task<SpaServers> StartAsync(bool onFunctionsHost)
    {
        var servers = new SpaServers();
        try
        {
            await servers.StartCoreAsync(onFunctionsHost);
            return servers;
        }
        catch
        {
            await servers.DisposeAsync();
            throw;
        }
    }

    private async Task StartCoreAsync(bool onFunctionsHost)
    {
        var spaRoot = Path.Combine(RepositoryRoot.Find(), "samples", "spa");

        // The SPA first: the token service and the API must know its origin.
        Spa = await StartAsync(StaticApp(app =>
        {
            app.Use(async (context, next) =>
            {
                context.Response.Headers.ContentSecurityPolicy = ContentSecurityPolicy(_spaConfig);
                context.Response.Headers.XContentTypeOptions = "nosniff";
                context.Response.Headers["Referrer-Policy"] = "no-referrer";
                context.Response.Headers.CacheControl = "no-cache";
                if (context.Request.Path == "/config.json")
                {
                    context.Response.ContentType = "application/json; charset=utf-8";
                    await context.Response.WriteAsync(_spaConfig.ToJsonString());
                    return;
                }

                await next(context);
            });
            var files = new PhysicalFileProvider(spaRoot);
            app.UseDefaultFiles(new DefaultFilesOptions { FileProvider = files });
            app.UseStaticFiles(new StaticFileOptions { FileProvider = files });
        }));

        var other = await StartAsync(StaticApp(app => app.Run(context =>
        {
            context.Response.ContentType = "text/html; charset=utf-8";
            return context.Response.WriteAsync("<!doctype html><html><head><title>Another origin</title></head><body><p>A page of another origin.</p></body></html>");
        })));
        OtherOrigin = other;
        OtherSite = new UriBuilder(other) { Host = "127.0.0.1" }.Uri;

        var tokenServiceSettings = TokenServiceSettings(SpaOrigin, Path.Combine(_keyDirectory, "signing-keys.json"));
        if (onFunctionsHost)
        {
            // App settings as local.settings.json and App Service spell them (Clients__0__ClientId), in Development as
            // `func start` runs, for the development IdP the SPA signs in with.
            var values = tokenServiceSettings.ToDictionary(p => p.Key.Replace(":", "__", StringComparison.Ordinal), p => p.Value, StringComparer.Ordinal);
            values["AZURE_FUNCTIONS_ENVIRONMENT"] = "Development";
            _functionsHost = await RealFunctionsHost.StartAsync(values);
            TokenService = new UriBuilder(_functionsHost.BaseAddress) { Host = "localhost" }.Uri;
        }
        else
        {
            var tokenService = TokenServiceHost.Build(["--environment", "Development", "--urls", "http://127.0.0.1:0"], builder =>
            {
                builder.Configuration.AddInMemoryCollection(tokenServiceSettings);
                builder.Logging.SetMinimumLevel(LogLevel.Warning);
                builder.Services.AddSingleton<TimeProvider>(Time);
                builder.Services.AddSingleton<Microsoft.AspNetCore.Hosting.IStartupFilter>(TokenServiceRequests);
                builder.Services.AddSingleton<Microsoft.AspNetCore.Hosting.IStartupFilter>(new ClockDateHeader(Time));
            });
            TokenService = await StartAsync(tokenService);
        }

        // Outside Development the API checks DPoP proofs' htu against its public origin, which must be known before it
        // starts: a port reserved here rather than port 0.
        // The page calls the API as localhost (StartAsync names every server so), so that is the API's public origin.
        var apiPort = FreeLoopbackPort().ToString(System.Globalization.CultureInfo.InvariantCulture);
        var api = SampleApiHost.Build(["--environment", "Testing", "--urls", "http://127.0.0.1:" + apiPort], builder =>
        {
            builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["SampleApi:PublicOrigin"] = "http://localhost:" + apiPort,
                ["SampleApi:Authority"] = Issuer,
                ["SampleApi:Audience"] = ApiAudience,
                ["SampleApi:ClientId"] = ApiClientId,
                ["SampleApi:ClientSecret"] = ApiSecret,
                ["SampleApi:AllowedOrigins:0"] = SpaOrigin,
            });
            builder.Logging.SetMinimumLevel(LogLevel.Warning);
        }, o =>
        {
            o.BackchannelHttpHandler = new IssuerRewriteHandler(TokenService);
            o.TimeProvider = Time;
        }, o =>
        {
            // Every request asks the token service, so that an ended session is refused at once.
            o.StatusCacheDuration = TimeSpan.Zero;
        });
        Api = await StartAsync(api);

        _spaConfig = new JsonObject
        {
            ["tokenService"] = TokenService.ToString().TrimEnd('/'),
            ["devIdp"] = new Uri(TokenService, "/dev-idp").ToString(),
            ["clientId"] = SpaClientId,
            // The API's audience and the token service's issuer (the sessions routes take tokens for it).
            ["audiences"] = new JsonArray(ApiAudience, Issuer),
            ["sessionsAudience"] = Issuer,
            ["scope"] = "orders.read",
            ["api"] = new Uri(Api, "/orders").ToString(),
            ["refreshLeewaySeconds"] = 60,
        };
    }

    private static Dictionary<string, string?> TokenServiceSettings(string spaOrigin, string keyPath) => new()
    {
        ["TokenService:Issuer"] = Issuer,
        ["TokenService:AccessTokenLifetime"] = "00:15:00",
        ["Keys:DevelopmentKeyPath"] = keyPath,
        ["Clients:0:ClientId"] = SpaClientId,
        ["Clients:0:Type"] = "spa",
        ["Clients:0:DisplayName"] = SpaDisplayName,
        ["Clients:0:AllowedOrigins:0"] = spaOrigin,
        ["Clients:0:AllowedAudiences:0"] = ApiAudience,
        ["Clients:0:AllowedAudiences:1"] = Issuer,
        ["Clients:0:AllowedScopes:0"] = "orders.read",
        ["Clients:1:ClientId"] = ApiClientId,
        ["Clients:1:Type"] = "resource_server",
        ["Clients:1:Secret"] = ApiSecret,
        ["Clients:1:AllowedAudiences:0"] = ApiAudience,
        ["Clients:2:ClientId"] = PortalClientId,
        ["Clients:2:Type"] = "confidential",
        ["Clients:2:DisplayName"] = PortalDisplayName,
        ["Clients:2:Secret"] = PortalSecret,
        ["Clients:2:AllowedAudiences:0"] = ApiAudience,
        ["Clients:2:AllowedScopes:0"] = "orders.read",
    };

    /// <summary>The policy samples/spa/serve.mjs sends (contentSecurityPolicy there): only the configured services.</summary>
    public static string ContentSecurityPolicy(JsonObject config)
    {
        var origins = new[] { "tokenService", "devIdp", "api" }
            .Select(key => config[key]?.GetValue<string>())
            .Where(url => !string.IsNullOrEmpty(url))
            .Select(url => Origin(new Uri(url!)))
            .Distinct(StringComparer.Ordinal);
        return string.Join("; ",
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self'",
            ("connect-src 'self' " + string.Join(' ', origins)).Trim(),
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'");
    }

    public static string Origin(Uri uri) => uri.GetLeftPart(UriPartial.Authority);

    /// <summary>The address as 127.0.0.1, where Kestrel listens (.NET would try ::1 first for localhost).</summary>
    private static Uri Loopback(Uri uri) => new UriBuilder(uri) { Host = "127.0.0.1" }.Uri;

    private static WebApplication StaticApp(Action<WebApplication> configure)
    {
        var builder = WebApplication.CreateSlimBuilder(["--urls", "http://127.0.0.1:0"]);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        var app = builder.Build();
        configure(app);
        return app;
    }

    /// <summary>A loopback port free now (the listener is closed at once for the server to take it).</summary>
    private static int FreeLoopbackPort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }

    private async Task<Uri> StartAsync(WebApplication app)
    {
        _apps.Add(app);
        await app.StartAsync();
        var address = new Uri(app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First());
        return new UriBuilder(address) { Host = "localhost" }.Uri;
    }

    // ---- server-side checks ---------------------------------------------------------------------------------

    /// <summary>RFC 7662 introspection by the API's client: is this access token still active?</summary>
    public async Task<bool> IsActiveAsync(string accessToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(Loopback(TokenService), "/oauth2/introspect"))
        {
            Content = new FormUrlEncodedContent([new("token", accessToken)]),
        };
        request.Headers.Authorization = new("Basic", Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(ApiClientId + ":" + ApiSecret)));
        using var response = await Http.SendAsync(request);
        response.EnsureSuccessStatusCode();
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return json.RootElement.GetProperty("active").GetBoolean();
    }

    /// <summary>Revokes an access token of the spa client (RFC 7009; its jti is denied), as a sign-out elsewhere would.</summary>
    public async Task RevokeAccessTokenAsync(string accessToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(Loopback(TokenService), "/oauth2/revoke"))
        {
            Content = new FormUrlEncodedContent([new("token", accessToken), new("token_type_hint", "access_token"), new("client_id", SpaClientId)]),
        };
        request.Headers.Add("Origin", SpaOrigin);
        using var response = await Http.SendAsync(request);
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
    }

    /// <summary>Signs <paramref name="user"/> in through the confidential client (another application's session), as a server with <paramref name="userAgent"/>.</summary>
    public async Task SignInElsewhereAsync(string user, string? userAgent = null)
    {
        using var minted = await Http.PostAsync(new Uri(Loopback(TokenService), "/dev-idp/id-token"), new FormUrlEncodedContent([new("sub", user)]));
        minted.EnsureSuccessStatusCode();
        using var idToken = JsonDocument.Parse(await minted.Content.ReadAsStringAsync());
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(Loopback(TokenService), "/oauth2/token"))
        {
            Content = new FormUrlEncodedContent(
            [
                new("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
                new("subject_token", idToken.RootElement.GetProperty("id_token").GetString()!),
                new("subject_token_type", "urn:ietf:params:oauth:token-type:id_token"),
            ]),
        };
        request.Headers.Authorization = new("Basic", Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(PortalClientId + ":" + PortalSecret)));
        if (userAgent is not null)
        {
            request.Headers.TryAddWithoutValidation("User-Agent", userAgent);
        }

        using var response = await Http.SendAsync(request);
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        foreach (var app in Enumerable.Reverse(_apps))
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }

        if (_functionsHost is not null)
        {
            await _functionsHost.DisposeAsync();
        }

        try
        {
            Directory.Delete(_keyDirectory, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }

    /// <summary>Sends the API's requests for the issuer's URL (discovery, JWKS, introspection) to where the token service listens.</summary>
    private sealed class IssuerRewriteHandler(Uri target) : DelegatingHandler(new SocketsHttpHandler())
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            request.RequestUri = new UriBuilder(request.RequestUri!) { Scheme = target.Scheme, Host = "127.0.0.1", Port = target.Port }.Uri;
            return base.SendAsync(request, cancellationToken);
        }
    }
}
