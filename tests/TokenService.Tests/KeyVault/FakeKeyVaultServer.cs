using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using Azure.Core;
using Azure.Core.Pipeline;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using TokenService.Azure.KeyVault;
using TokenService.Jwt;
using TokenService.Tests.Infrastructure;

namespace TokenService.Tests.KeyVault;

/// <summary>
/// An in-test Key Vault answering the documented REST JSON (api-version 7.5) with real keys: create, get, list
/// versions (paged with nextLink), update, sign; the 401 challenge for requests without a bearer token; the
/// error envelope with Key Vault's inner error codes (403 <c>Forbidden</c>/<c>KeyDisabled</c> to a sign on a disabled
/// version, 403 <c>Forbidden</c>/<c>ForbiddenByRbac</c> to an operation the caller has no role for, see
/// <see cref="DenyOperations"/>); injectable 429/503 faults, Key Vault's throttling (N operations per window, 429 without
/// Retry-After, see <see cref="Throttle"/>) and slow key creation. Counts calls per operation. Clients reach it under
/// its https name (<see cref="VaultUri"/>) through <see cref="Transport"/>, or under another public vault name
/// (https://myvault.vault.azure.net) through <see cref="RouteToLoopback"/>.
/// </summary>
public sealed class FakeKeyVaultServer : IAsyncDisposable
{
    public const string Token = "fake-vault-token";
    private readonly WebApplication _app;
    private readonly ConcurrentDictionary<string, List<Version>> _keys = new();
    public readonly ConcurrentDictionary<string, int> Calls = new();
    public volatile int FailWithStatus;

    /// <summary>The requests answered 401 (no token): method, path and how many body bytes they carried.</summary>
    public readonly ConcurrentQueue<(string Method, string Path, int BodyLength)> Unauthenticated = new();

    /// <summary>The WWW-Authenticate header of the 401 (Key Vault's documented form by default).</summary>
    public string Challenge { get; set; } = "Bearer authorization=\"https://login.microsoftonline.com/72f988bf-0000-0000-0000-000000000000\", resource=\"https://vault.azure.net\"";

    /// <summary>The vault URL clients use, for kids and nextLinks (default: the loopback address).</summary>
    public Uri? PublicVaultUri { get; set; }

    /// <summary>Scheme and authority of nextLinks, e.g. "https://myvault.vault.azure.net:443" as in Key Vault's documented example.</summary>
    public string? NextLinkBase { get; set; }

    /// <summary>The last page's nextLink: null is JSON null; "" is an empty string.</summary>
    public string? FinalNextLink { get; set; }

    /// <summary>When set, authorized requests are answered 200 with this body (a gateway page, a changed API).</summary>
    public volatile string? OverrideBody;

    /// <summary>RSA moduli are returned with a leading 0x00 octet (257 octets for 2048 bits), as some HSMs do.</summary>
    public volatile bool PrefixModulusWithZero;

    /// <summary>When set, sign requests wait for it before they are answered: a vault that hangs.</summary>
    public volatile TaskCompletionSource? HoldSigns;

    /// <summary>When set, each sign is answered after the time it returns, on <see cref="Clock"/>: the vault's own latency (load runs).</summary>
    public Func<TimeSpan>? SignLatency { get; set; }

    /// <summary>Runs while a key is being created (after its material exists, before it is answered): a slow HSM.</summary>
    public volatile Action? OnCreate;

    /// <summary>The vault's clock: key creation times and throttling windows (a FakeTimeProvider in time-driven tests).</summary>
    public TimeProvider Clock { get; set; } = TimeProvider.System;

    private readonly Lock _throttleLock = new();
    private int _throttleLimit = -1;
    private TimeSpan _throttleWindow;
    private DateTimeOffset _windowStart;
    private int _inWindow;
    private Queue<DateTimeOffset>? _sliding;

    /// <summary>
    /// Operations ("create", "get", "list", "update", "sign") the caller has no role for: answered as Key Vault answers a
    /// missing RBAC role, 403 <c>{"error":{"code":"Forbidden",…,"innererror":{"code":"ForbiddenByRbac"}}}</c>, counted
    /// as "denied". Not counted as the operation itself.
    /// </summary>
    public readonly ConcurrentDictionary<string, bool> DenyOperations = new();

    /// <summary>
    /// Operations ("create", "get", "list", "update", "sign") answered with a client error in Key Vault's envelope
    /// (e.g. 400 <c>BadParameter</c>, 409 <c>Conflict</c>), counted as "failed-{operation}". Not counted as the operation.
    /// </summary>
    public readonly ConcurrentDictionary<string, (int Status, string Code)> FailOperations = new();

    /// <summary>
    /// An Azure Policy assignment with effect Deny of "Key Vault keys should have an expiration date"
    /// (152b15f7-8e1f-4c1f-ab71-8c010ba5dbc0): a create without <c>attributes.exp</c> is refused 403
    /// <c>Forbidden</c>/<c>ForbiddenByPolicy</c>, counted as "policy-denied".
    /// </summary>
    public volatile bool PolicyRequiresExpiry;

    /// <summary>
    /// "Keys should have the specified maximum validity period" (49a22571-d204-4c91-a7b6-09b1a586fbc9) with Deny: a
    /// create whose <c>exp</c> is absent or more than this after its creation is refused as above.
    /// </summary>
    public TimeSpan? PolicyMaximumValidity { get; set; }

    /// <summary>
    /// Key Vault refuses sign (and encrypt, wrapKey) with a key version before its <c>nbf</c> or from its <c>exp</c> on
    /// (verify and decrypt stay allowed); answered 403 <c>Forbidden</c> and counted as "sign-outside-validity". Off by
    /// default, so that tests about other behaviour can move the clock freely.
    /// </summary>
    public volatile bool RefuseSignOutsideValidity;

    /// <summary>Every key version's attributes as created: (created, nbf, exp), Unix seconds.</summary>
    public IReadOnlyList<(long Created, long? Nbf, long? Exp)> CreatedKeys
    {
        get
        {
            lock (_keys)
            {
                return [.. _keys.Values.SelectMany(v => v).OrderBy(v => v.Created).Select(v => (v.Created, v.Nbf, v.Exp))];
            }
        }
    }

    /// <summary>Sets a key version's <c>exp</c> (as an operator could in the portal); <paramref name="kid"/> is its full key id.</summary>
    public void SetExpiry(string kid, DateTimeOffset expiresOn)
    {
        lock (_keys)
        {
            _keys.Values.SelectMany(v => v).Single(v => kid.EndsWith("/" + v.Id, StringComparison.Ordinal)).Exp = expiresOn.ToUnixTimeSeconds();
        }
    }

    /// <summary>
    /// Removes a key version (<paramref name="kid"/> is its full key id), as a deletion leaves it to the vault: reads and
    /// sign answer 404 <c>KeyNotFound</c> and lists no longer name it.
    /// </summary>
    public void Remove(string kid)
    {
        lock (_keys)
        {
            foreach (var versions in _keys.Values)
            {
                versions.RemoveAll(v => kid.EndsWith("/" + v.Id, StringComparison.Ordinal));
            }
        }
    }

    /// <summary>Retry-After (seconds) sent with throttling 429s; null, as Key Vault often does, sends none.</summary>
    public int? ThrottleRetryAfter { get; set; }

    /// <summary>
    /// Enforces Key Vault's service limit: at most <paramref name="operations"/> authorized requests per
    /// <paramref name="window"/> (fixed windows from now on <see cref="Clock"/>); the rest are answered 429
    /// <c>{"error":{"code":"Throttled",…}}</c> without Retry-After and, as in Key Vault, do not count against the limit.
    /// Negative: no limit.
    /// </summary>
    public void Throttle(int operations, TimeSpan window)
    {
        lock (_throttleLock)
        {
            _throttleLimit = operations;
            _throttleWindow = window;
            _windowStart = Clock.GetUtcNow();
            _inWindow = 0;
            _sliding = null;
        }
    }

    /// <summary>
    /// Enforces the limit as a sliding window, as a vault shared by several instances sees it: at most
    /// <paramref name="operations"/> authorized requests in any <paramref name="window"/> on <see cref="Clock"/>; beyond
    /// it 429 <c>Throttled</c> with <c>Retry-After</c> = the whole seconds until the oldest counted request leaves the
    /// window (at least 1). Throttled requests do not count.
    /// </summary>
    public void ThrottleSliding(int operations, TimeSpan window)
    {
        lock (_throttleLock)
        {
            _throttleLimit = operations;
            _throttleWindow = window;
            _sliding = new Queue<DateTimeOffset>();
        }
    }

    private bool Admit(out int? retryAfter)
    {
        lock (_throttleLock)
        {
            retryAfter = ThrottleRetryAfter;
            if (_throttleLimit < 0)
            {
                return true;
            }

            if (_sliding is { } admitted)
            {
                var at = Clock.GetUtcNow();
                while (admitted.TryPeek(out var oldest) && oldest + _throttleWindow <= at)
                {
                    admitted.Dequeue();
                }

                if (admitted.Count >= _throttleLimit)
                {
                    retryAfter = Math.Max(1, (int)Math.Ceiling((admitted.Peek() + _throttleWindow - at).TotalSeconds));
                    return false;
                }

                admitted.Enqueue(at);
                return true;
            }

            var now = Clock.GetUtcNow();
            while (now >= _windowStart + _throttleWindow)
            {
                _windowStart += _throttleWindow;
                _inWindow = 0;
            }

            if (_inWindow >= _throttleLimit)
            {
                return false;
            }

            _inWindow++;
            return true;
        }
    }

    private sealed class Version
    {
        public required string Id;
        public required string Kty;
        public RSA? Rsa;
        public ECDsa? Ec;
        public bool Enabled = true;
        public long Created;
        public long? Nbf;
        public long? Exp;
        public Dictionary<string, string> Tags = [];
    }

    private FakeKeyVaultServer(WebApplication app) => _app = app;

    /// <summary>
    /// The vault's https name, <c>https://vault-{port}.vault.azure.net/</c>: clients reach it through <see cref="Transport"/>
    /// (Azure.Core's bearer token policy sends tokens over https only), and its challenge's resource
    /// (https://vault.azure.net) is of its domain, as for a real vault.
    /// </summary>
    public Uri VaultUri { get; private set; } = null!;

    /// <summary>Where the server listens: plain http on 127.0.0.1.</summary>
    public Uri LoopbackUri { get; private set; } = null!;

    /// <summary>
    /// The transport for clients of any in-test vault: a request to <c>vault-{port}.vault.azure.net</c> goes to
    /// http://127.0.0.1:{port}; any other host is refused.
    /// </summary>
    public static HttpPipelineTransport Transport { get; } = Loopback.Transport(uri =>
        uri.Host.StartsWith("vault-", StringComparison.Ordinal) && uri.Host.EndsWith(".vault.azure.net", StringComparison.Ordinal)
            && int.TryParse(uri.Host["vault-".Length..uri.Host.IndexOf('.', StringComparison.Ordinal)], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var port)
            ? new Uri($"http://127.0.0.1:{port}/")
            : null);

    public int Count(string operation) => Calls.GetValueOrDefault(operation);

    public static async Task<FakeKeyVaultServer> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders(); // per-request logs would cost more than the vault's work under load
        var app = builder.Build();
        var server = new FakeKeyVaultServer(app);
        app.Use(async (ctx, next) =>
        {
            if (ctx.Request.Headers.Authorization != "Bearer " + Token)
            {
                using var body = new MemoryStream();
                await ctx.Request.Body.CopyToAsync(body);
                server.Unauthenticated.Enqueue((ctx.Request.Method, ctx.Request.Path.Value!, (int)body.Length));
                ctx.Response.StatusCode = 401;
                ctx.Response.Headers.WWWAuthenticate = server.Challenge;
                return;
            }

            if (ctx.Request.Query["api-version"] != "7.5")
            {
                await Error(ctx, 400, "BadParameter", "api-version is required.");
                return;
            }

            if (!server.Admit(out var retryAfter))
            {
                server.Calls.AddOrUpdate("throttled", 1, (_, n) => n + 1);
                if (retryAfter is { } seconds)
                {
                    ctx.Response.Headers.RetryAfter = seconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
                }

                await Error(ctx, 429, "Throttled", "Operations per second exceeded for this vault. Retry the request after a delay.");
                return;
            }

            if (server.FailWithStatus != 0)
            {
                ctx.Response.Headers.RetryAfter = "1";
                await Error(ctx, server.FailWithStatus, server.FailWithStatus == 429 ? "Throttled" : "ServiceUnavailable", "Injected fault.");
                return;
            }

            if (OperationOf(ctx.Request) is { } operation && server.DenyOperations.ContainsKey(operation))
            {
                server.Calls.AddOrUpdate("denied", 1, (_, n) => n + 1);
                await Error(ctx, 403, "Forbidden",
                    "Caller is not authorized to perform action on resource.\r\nIf role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\n"
                    + $"Caller: appid=00000000-0000-0000-0000-000000000001;oid=00000000-0000-0000-0000-000000000002\r\nAction: 'Microsoft.KeyVault/vaults/keys/{(operation == "sign" ? "sign/action" : operation is "get" or "list" ? "read" : "write")}'\r\n"
                    + "Assignment: (not found)\r\nDecisionReason: 'DeniedWithNoValidRBAC'\r\n",
                    "ForbiddenByRbac");
                return;
            }

            if (OperationOf(ctx.Request) is { } failing && server.FailOperations.TryGetValue(failing, out var failure))
            {
                server.Calls.AddOrUpdate("failed-" + failing, 1, (_, n) => n + 1);
                await Error(ctx, failure.Status, failure.Code, "Injected client error.");
                return;
            }

            if (server.OverrideBody is { } overrideBody)
            {
                ctx.Response.StatusCode = 200;
                ctx.Response.ContentType = "application/json; charset=utf-8";
                await ctx.Response.WriteAsync(overrideBody);
                return;
            }

            await next(ctx);
        });
        app.MapPost("/keys/{name}/create", (Delegate)server.Create);
        app.MapGet("/keys/{name}/versions", (Delegate)server.List);
        app.MapGet("/keys/{name}/{version?}", (Delegate)server.Get);
        app.MapMethods("/keys/{name}/{version}", ["PATCH"], (Delegate)server.Update);
        app.MapPost("/keys/{name}/{version}/sign", (Delegate)server.Sign);
        server.LoopbackUri = await Loopback.StartAsync(app);
        server.VaultUri = new Uri($"https://vault-{server.LoopbackUri.Port}.vault.azure.net/");
        return server;
    }

    private static Task Error(HttpContext ctx, int status, string code, string message, string? innerCode = null)
    {
        ctx.Response.StatusCode = status;
        return ctx.Response.WriteAsJsonAsync(ErrorBody(code, message, innerCode));
    }

    /// <summary>Key Vault's error envelope; the inner error says what a 403 is about.</summary>
    private static JsonObject ErrorBody(string code, string message, string? innerCode = null)
    {
        var error = new JsonObject { ["code"] = code, ["message"] = message };
        if (innerCode is not null)
        {
            error["innererror"] = new JsonObject { ["code"] = innerCode };
        }

        return new JsonObject { ["error"] = error };
    }

    /// <summary>The keys operation a request is, as routed below.</summary>
    private static string? OperationOf(HttpRequest request)
    {
        var segments = request.Path.Value!.Split('/', StringSplitOptions.RemoveEmptyEntries);
        return segments switch
        {
            ["keys", _, "create"] when HttpMethods.IsPost(request.Method) => "create",
            ["keys", _, _, "sign"] when HttpMethods.IsPost(request.Method) => "sign",
            ["keys", _, "versions"] when HttpMethods.IsGet(request.Method) => "list",
            ["keys", ..] when HttpMethods.IsGet(request.Method) => "get",
            ["keys", _, _] when HttpMethods.IsPatch(request.Method) => "update",
            _ => null,
        };
    }

    private string PublicBase => (PublicVaultUri ?? VaultUri).AbsoluteUri.TrimEnd('/');

    private string Kid(string name, Version v) => $"{PublicBase}/keys/{name}/{v.Id}";

    /// <summary>
    /// Routes a client's requests for any name (<see cref="PublicVaultUri"/>, e.g. https://myvault.vault.azure.net) to this
    /// server, so the client sees that name while the test talks plain http on loopback.
    /// </summary>
    public HttpPipelineTransport RouteToLoopback() => Loopback.Transport(LoopbackUri);

    private JsonObject Attributes(Version v)
    {
        var attributes = new JsonObject { ["enabled"] = v.Enabled, ["created"] = v.Created, ["updated"] = v.Created, ["recoveryLevel"] = "Recoverable+Purgeable" };
        if (v.Nbf is { } nbf)
        {
            attributes["nbf"] = nbf;
        }

        if (v.Exp is { } exp)
        {
            attributes["exp"] = exp;
        }

        return attributes;
    }

    private JsonObject Tags(Version v)
    {
        var tags = new JsonObject();
        foreach (var (k, val) in v.Tags)
        {
            tags[k] = val;
        }

        return tags;
    }

    private JsonObject Bundle(string name, Version v)
    {
        var key = new JsonObject { ["kid"] = Kid(name, v), ["kty"] = v.Kty, ["key_ops"] = new JsonArray("sign", "verify") };
        if (v.Rsa is { } rsa)
        {
            var p = rsa.ExportParameters(false);
            key["n"] = Base64UrlEncoding.Encode(PrefixModulusWithZero ? [0, .. p.Modulus!] : p.Modulus);
            key["e"] = Base64UrlEncoding.Encode(p.Exponent);
        }
        else
        {
            var p = v.Ec!.ExportParameters(false);
            key["crv"] = "P-256";
            key["x"] = Base64UrlEncoding.Encode(p.Q.X);
            key["y"] = Base64UrlEncoding.Encode(p.Q.Y);
        }

        return new JsonObject { ["key"] = key, ["attributes"] = Attributes(v), ["tags"] = Tags(v) };
    }

    private async Task<IResult> Create(HttpContext ctx, string name)
    {
        Calls.AddOrUpdate("create", 1, (_, n) => n + 1);
        var body = (await JsonNode.ParseAsync(ctx.Request.Body))!.AsObject();
        var kty = (string)body["kty"]!;
        var v = new Version { Id = Guid.NewGuid().ToString("N"), Kty = kty, Created = Clock.GetUtcNow().ToUnixTimeSeconds() };
        if (kty is "RSA-HSM" or "RSA")
        {
            v.Rsa = RSA.Create((int?)body["key_size"] ?? 2048);
        }
        else if (kty is "EC-HSM" or "EC" && (string?)body["crv"] == "P-256")
        {
            v.Ec = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        }
        else
        {
            return Results.Json(new JsonObject { ["error"] = new JsonObject { ["code"] = "BadParameter", ["message"] = "Unsupported key type." } }, statusCode: 400);
        }

        if (body["tags"] is JsonObject tags)
        {
            v.Tags = tags.ToDictionary(t => t.Key, t => (string)t.Value!);
        }

        v.Nbf = (long?)body["attributes"]?["nbf"];
        v.Exp = (long?)body["attributes"]?["exp"];
        if ((PolicyRequiresExpiry && v.Exp is null)
            || (PolicyMaximumValidity is { } maximum && (v.Exp is null || v.Exp - v.Created > (long)maximum.TotalSeconds)))
        {
            Calls.AddOrUpdate("policy-denied", 1, (_, n) => n + 1);
            return Results.Json(
                ErrorBody("Forbidden", "The operation is disallowed by an Azure Policy assignment on this key vault (key expiration date).", KeyVaultErrorCodes.ForbiddenByPolicy),
                statusCode: 403);
        }

        OnCreate?.Invoke();
        lock (_keys)
        {
            _keys.GetOrAdd(name, _ => []).Add(v);
        }

        return Results.Json(Bundle(name, v));
    }

    private IResult List(HttpContext ctx, string name)
    {
        Calls.AddOrUpdate("list", 1, (_, n) => n + 1);
        List<Version> versions;
        lock (_keys)
        {
            versions = _keys.TryGetValue(name, out var list) ? [.. list] : [];
        }

        // Two per page, to exercise nextLink.
        var skip = int.TryParse(ctx.Request.Query["$skiptoken"], out var s) ? s : 0;
        var page = versions.Skip(skip).Take(2).Select(v => (JsonNode)new JsonObject { ["kid"] = Kid(name, v), ["attributes"] = Attributes(v), ["tags"] = Tags(v) }).ToArray();
        var result = new JsonObject { ["value"] = new JsonArray(page) };
        result["nextLink"] = skip + 2 < versions.Count ? $"{NextLinkBase ?? PublicBase}/keys/{name}/versions?api-version=7.5&$skiptoken={skip + 2}" : FinalNextLink;
        return Results.Json(result);
    }

    private IResult Get(string name, string? version)
    {
        Calls.AddOrUpdate("get", 1, (_, n) => n + 1);
        var v = Find(name, version);
        return v is null
            ? Results.Json(new JsonObject { ["error"] = new JsonObject { ["code"] = "KeyNotFound", ["message"] = "A key with (name/id) was not found." } }, statusCode: 404)
            : Results.Json(Bundle(name, v));
    }

    private async Task<IResult> Update(HttpContext ctx, string name, string version)
    {
        Calls.AddOrUpdate("update", 1, (_, n) => n + 1);
        var v = Find(name, version);
        if (v is null)
        {
            return Results.NotFound();
        }

        var body = (await JsonNode.ParseAsync(ctx.Request.Body))!.AsObject();
        if (body["attributes"]?["enabled"] is JsonValue enabled)
        {
            v.Enabled = (bool)enabled;
        }

        if (body["tags"] is JsonObject tags)
        {
            v.Tags = tags.ToDictionary(t => t.Key, t => (string)t.Value!);
        }

        return Results.Json(Bundle(name, v));
    }

    private async Task<IResult> Sign(HttpContext ctx, string name, string version)
    {
        Calls.AddOrUpdate("sign", 1, (_, n) => n + 1);
        if (HoldSigns is { } hold)
        {
            await hold.Task.WaitAsync(ctx.RequestAborted);
        }

        if (SignLatency?.Invoke() is { } latency && latency > TimeSpan.Zero)
        {
            await Task.Delay(latency, Clock, ctx.RequestAborted);
        }

        var v = Find(name, version);
        if (v is null)
        {
            Calls.AddOrUpdate("sign-not-found", 1, (_, n) => n + 1);
            return Results.Json(ErrorBody("KeyNotFound", "A key with (name/id) was not found in this key vault."), statusCode: 404);
        }

        if (!v.Enabled)
        {
            // As Key Vault answers a cryptographic operation on a disabled version.
            Calls.AddOrUpdate("sign-disabled", 1, (_, n) => n + 1);
            return Results.Json(ErrorBody("Forbidden", "Operation sign is not allowed on a disabled key.", "KeyDisabled"), statusCode: 403);
        }

        var now = Clock.GetUtcNow().ToUnixTimeSeconds();
        if (RefuseSignOutsideValidity && ((v.Exp is { } exp && now >= exp) || (v.Nbf is { } nbf && now < nbf)))
        {
            Calls.AddOrUpdate("sign-outside-validity", 1, (_, n) => n + 1);
            return Results.Json(ErrorBody("Forbidden", "Operation sign is not allowed on an expired or not yet valid key.", "KeyExpired"), statusCode: 403);
        }

        var body = (await JsonNode.ParseAsync(ctx.Request.Body))!.AsObject();
        var alg = (string)body["alg"]!;
        var digest = Base64UrlEncoding.DecodeStrict((string)body["value"]!)!;
        var signature = alg switch
        {
            "RS256" => v.Rsa!.SignHash(digest, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1),
            "PS256" => v.Rsa!.SignHash(digest, HashAlgorithmName.SHA256, RSASignaturePadding.Pss),
            "ES256" => v.Ec!.SignHash(digest, DSASignatureFormat.IeeeP1363FixedFieldConcatenation),
            _ => null,
        };
        return signature is null
            ? Results.Json(new JsonObject { ["error"] = new JsonObject { ["code"] = "BadParameter", ["message"] = "Unsupported algorithm." } }, statusCode: 400)
            : Results.Json(new JsonObject { ["kid"] = Kid(name, v), ["value"] = Base64UrlEncoding.Encode(signature) });
    }

    private Version? Find(string name, string? version)
    {
        lock (_keys)
        {
            return _keys.TryGetValue(name, out var list)
                ? (string.IsNullOrEmpty(version) ? list.LastOrDefault() : list.FirstOrDefault(v => v.Id == version))
                : null;
        }
    }

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();
}

/// <summary>A TokenCredential that records what it was asked for.</summary>
public sealed class RecordingCredential : TokenCredential
{
    public readonly ConcurrentQueue<TokenRequestContext> Requests = new();

    public override AccessToken GetToken(TokenRequestContext requestContext, CancellationToken cancellationToken)
    {
        Requests.Enqueue(requestContext);
        return new AccessToken(FakeKeyVaultServer.Token, DateTimeOffset.UtcNow.AddHours(1));
    }

    public override ValueTask<AccessToken> GetTokenAsync(TokenRequestContext requestContext, CancellationToken cancellationToken) =>
        ValueTask.FromResult(GetToken(requestContext, cancellationToken));
}
