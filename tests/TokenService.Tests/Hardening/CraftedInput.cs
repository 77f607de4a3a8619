using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using FsCheck;
using FsCheck.Fluent;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using TokenService.Keys;
using TokenService.Tests.Infrastructure;
using TokenService.Jwt;
using static TokenService.Tests.Infrastructure.TokenServiceTestHost;

namespace TokenService.Tests.Hardening;

/// <summary>
/// Builds crafted JOSE and JSON input. JSON is written as text in which the JSON escapes stay literal
/// (<c>"\\ud800"</c> in C# is the six characters of a lone surrogate escape) and the control characters
/// U+0001..U+0004 stand for invalid UTF-8 byte sequences, which a C# string cannot hold: <see cref="Bytes"/>
/// swaps them in.
/// </summary>
public static class Crafted
{
    public const string ServiceIssuer = "https://tokens.test.example";
    public const string Bystander = "crafted-bystander";

    /// <summary>A JSON string whose content is an invalid UTF-8 sequence (a UTF-8-encoded surrogate, RFC 3629 §3).</summary>
    public const string BadUtf8 = "\"\u0001\"";

    /// <summary>UTF-8 of <paramref name="text"/>, with U+0001..U+0004 replaced by invalid UTF-8 sequences.</summary>
    public static byte[] Bytes(string text)
    {
        var bytes = new List<byte>(text.Length + 8);
        foreach (var b in Encoding.UTF8.GetBytes(text))
        {
            switch (b)
            {
                case 1: bytes.AddRange([0xED, 0xA0, 0x80]); break; // CESU-8 high surrogate
                case 2: bytes.Add(0xFF); break;                      // never valid in UTF-8
                case 3: bytes.AddRange([0xC3, 0x28]); break;         // lead byte without continuation
                case 4: bytes.AddRange([0xC0, 0xAF]); break;         // overlong '/'
                default: bytes.Add(b); break;
            }
        }

        return [.. bytes];
    }

    public static string B64(string json) => Base64UrlEncoding.Encode(Bytes(json));

    public static string Deep(int depth) => new string('[', depth) + new string(']', depth);

    /// <summary>A token with a crafted header, the given payload segment and a junk signature.</summary>
    public static string Unsigned(string headerJson, string payloadSegment = "e30") => B64(headerJson) + "." + payloadSegment + ".AAAA";

    /// <summary>
    /// JOSE headers that once reached <c>GetString</c> on text it cannot decode, or hold the wrong JSON kinds, huge
    /// numbers, duplicate or escaped names, deep nesting: each must be a validation failure.
    /// </summary>
    public static IEnumerable<string> Headers(string kid)
    {
        var k = "\"" + kid + "\"";
        foreach (var bad in (string[])["\"\\ud800\"", "\"\\udfff\"", "\"a\\ud800\"", "\"\\udbff\\u0041\"", BadUtf8, "\"\u0002\"", "\"x\u0003\"", "\"\u0004\"",
                     "1", "-1", "1e400", "99999999999999999999999", "true", "null", "[]", "[\"RS256\"]", "{}", "{\"alg\":\"RS256\"}", Deep(200)])
        {
            yield return $$"""{"alg":{{bad}},"kid":{{k}},"typ":"at+jwt"}""";
            yield return $$"""{"alg":"RS256","kid":{{bad}},"typ":"at+jwt"}""";
            yield return $$$"""{"alg":"RS256","kid":{{{k}}},"typ":{{{bad}}}}""";
        }

        yield return $$"""{"alg":"RS256","kid":{{k}},"typ":"at+jwt","crit":["\ud800"]}""";
        yield return $$$"""{"alg":"RS256","kid":{{{k}}},"typ":"at+jwt","jwk":{"kty":"\ud800","n":1}}""";
        yield return $$"""{"alg":"RS256","kid":{{k}},"typ":"at+jwt","x5u":"\udfff"}""";
        yield return $$$"""{"alg":"RS256","kid":{{{k}}},"typ":"at+jwt","x":{{{BadUtf8}}}}""";
        yield return $$$"""{"alg":"RS256","kid":{{{k}}},"typ":"at+jwt","x":{{{Deep(200)}}}}""";
        yield return $$"""{"alg":"RS256","alg":"none","kid":{{k}},"typ":"at+jwt"}""";
        yield return $$"""{"alg":"RS256","kid":{{k}},"kid":"\ud800","typ":"at+jwt"}""";
        yield return $$"""{"alg":"RS256","kid":{{k}},"typ":"at+jwt","typ":1}""";
        yield return $$"""{"\u0061lg":"RS256","kid":{{k}},"typ":"at+jwt"}""";
        yield return $$"""{"\ud800":"x","alg":"RS256","kid":{{k}},"typ":"at+jwt"}""";
        yield return $$$"""{"{{{"\u0001"}}}":"x","alg":"RS256","kid":{{{k}}},"typ":"at+jwt"}""";
        yield return "\"\\ud800\"";
        yield return "[\"RS256\"]";
        yield return "null";
        yield return "1e400";
        yield return Deep(200);
        yield return "{\"alg\":\"RS256\"";
        yield return "{\"alg\":\"RS256\"} {}";
    }

    /// <summary>
    /// Payload members that make a claims set invalid: lone surrogates, invalid UTF-8, wrong kinds, huge numbers,
    /// duplicates, escaped names and deep nesting. Each is merged into otherwise valid claims.
    /// </summary>
    public static IEnumerable<(string Name, string Value)> ClaimMembers()
    {
        foreach (var name in (string[])["sub", "iss", "jti", "sid", "client_id", "scope", "acr", "nonce"])
        {
            foreach (var bad in (string[])["\"\\ud800\"", "\"\\udfff\"", "\"a\\ud800b\"", BadUtf8, "\"\u0002\"", "1", "null", "[]", "[\"x\"]", "{}", "true", "1e400"])
            {
                yield return (name, bad);
            }
        }

        foreach (var bad in (string[])["\"\\ud800\"", "[\"\\udfff\"]", "[\"ok\",\"\\ud800\"]", "[1]", "[null]", "{}", "null", "1", BadUtf8, "[" + BadUtf8 + "]"])
        {
            yield return ("aud", bad);
            yield return ("amr", bad);
        }

        foreach (var name in (string[])["exp", "nbf", "iat", "auth_time"])
        {
            foreach (var bad in (string[])["1e400", "-1e400", "99999999999999999999999", "253402300800", "-1", "\"\\ud800\"", "\"1700000000\"", "null", "[]", "{}", "true"])
            {
                yield return (name, bad);
            }
        }

        yield return ("x", BadUtf8);
        yield return ("x", Deep(200));
        yield return ("\\u0073ub", "\"escaped-name\"");
        yield return ("\\ud800", "\"x\"");
    }

    /// <summary>
    /// docs/api.md, "User ids": well-formed JSON strings that the user id rule (UserIds) refuses: control characters (C0, DEL
    /// and C1), line and paragraph separators, bidirectional overrides, isolates and marks, and a blank id. The JOSE
    /// layer accepts them; the token exchange must refuse an ID token whose <c>sub</c> holds one, as force logout and
    /// IdP events refuse the id.
    /// </summary>
    public static IEnumerable<(string Name, string Value)> RefusedUserIdMembers()
    {
        foreach (var bad in (string[])["\"ctl\\r\\nuser\"", "\"\\u0000\"", "\"a\\u001fb\"", "\"del\\u007f\"", "\"nel\\u0085\"", "\"c1\\u009f\"", "\"\\u2028\"", "\"x\\u2029y\"", "\"\\u202eresu\"", "\"\\u202a\"", "\"\\u2066x\\u2069\"", "\"\\u200f\"", "\"   \""])
        {
            yield return ("sub", bad);
        }
    }

    /// <summary>Claims as a JSON object, <paramref name="crafted"/> replacing the member of its name, or added (duplicate) when <paramref name="duplicate"/>.</summary>
    public static string Claims(IEnumerable<(string Name, string Value)> valid, (string Name, string Value)? crafted, bool duplicate = false)
    {
        var members = valid.Where(m => duplicate || crafted is null || m.Name != crafted.Value.Name).Select(m => $"\"{m.Name}\":{m.Value}").ToList();
        if (crafted is { } c)
        {
            members.Add($"\"{c.Name}\":{c.Value}");
        }

        return "{" + string.Join(",", members) + "}";
    }

    /// <summary>Claims with every member named in <paramref name="overrides"/> replaced by the overrides (repeated names stay repeated).</summary>
    public static string Claims(IEnumerable<(string Name, string Value)> valid, IReadOnlyList<(string Name, string Value)> overrides) =>
        "{" + string.Join(",", valid.Where(m => !overrides.Any(o => o.Name == m.Name)).Concat(overrides).Select(m => $"\"{m.Name}\":{m.Value}")) + "}";

    public static string Str(string value) => JsonSerializer.Serialize(value);

    /// <summary>Valid access-token claims of our service, for a session that does not exist.</summary>
    public static List<(string Name, string Value)> AccessTokenClaims()
    {
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        return
        [
            ("iss", Str(ServiceIssuer)), ("sub", Str("crafted-user")), ("aud", Str("api://orders")), ("exp", (now + 300).ToString(System.Globalization.CultureInfo.InvariantCulture)),
            ("iat", now.ToString(System.Globalization.CultureInfo.InvariantCulture)), ("jti", Str(Guid.NewGuid().ToString("N"))), ("sid", Str("no-such-session")),
            ("client_id", Str("web")), ("scope", Str("orders.read")),
        ];
    }

    /// <summary>Valid ID token claims of the test IdP.</summary>
    public static List<(string Name, string Value)> IdTokenClaims(string subject)
    {
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        return
        [
            ("iss", Str(TestIdp.Issuer)), ("sub", Str(subject)), ("aud", Str(TestIdp.Audience)), ("exp", (now + 300).ToString(System.Globalization.CultureInfo.InvariantCulture)),
            ("iat", now.ToString(System.Globalization.CultureInfo.InvariantCulture)), ("nbf", now.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            ("jti", Str(Guid.NewGuid().ToString("N"))), ("auth_time", now.ToString(System.Globalization.CultureInfo.InvariantCulture)),
        ];
    }

    /// <summary>Valid SET claims (RFC 8417) from the test IdP acting as the Shared Signals transmitter.</summary>
    public static List<(string Name, string Value)> SetClaims(string subIdJson, string eventsJson)
    {
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        return
        [
            ("iss", Str(TestIdp.Issuer)), ("aud", Str(ServiceIssuer)), ("iat", now.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            ("jti", Str(Guid.NewGuid().ToString("N"))), ("sub_id", subIdJson), ("events", eventsJson),
        ];
    }

    /// <summary>RS256 over raw header and payload JSON with the test IdP's key.</summary>
    public static string SignByIdp(TestIdp idp, string headerJson, string payloadJson)
    {
        var input = B64(headerJson) + "." + B64(payloadJson);
        var signature = idp.Rsa.SignData(Encoding.ASCII.GetBytes(input), System.Security.Cryptography.HashAlgorithmName.SHA256, System.Security.Cryptography.RSASignaturePadding.Pkcs1);
        return input + "." + Base64UrlEncoding.Encode(signature);
    }

    public static string IdpHeader(TestIdp idp, string typ = "JWT") => $$"""{"alg":"RS256","kid":"{{idp.RsaKid}}","typ":"{{typ}}"}""";

    /// <summary>Signs raw claims with the token service's own active key, as its access tokens are signed.</summary>
    public static async Task<string> SignByServiceAsync(TokenServiceTestHost host, string payloadJson, string? headerJson = null)
    {
        var keys = host.Services.GetRequiredService<ISigningKeyService>();
        var key = (await keys.GetKeySetAsync(CancellationToken.None)).Active ?? throw new InvalidOperationException("No active signing key.");
        headerJson ??= $$"""{"alg":"{{key.Algorithm}}","kid":"{{key.Kid}}","typ":"at+jwt"}""";
        var input = B64(headerJson) + "." + B64(payloadJson);
        var signature = await keys.SignAsync(key, Encoding.ASCII.GetBytes(input), CancellationToken.None);
        return input + "." + Base64UrlEncoding.Encode(signature);
    }

    public static async Task<string> ServiceKidAsync(TokenServiceTestHost host) =>
        (await host.Services.GetRequiredService<ISigningKeyService>().GetKeySetAsync(CancellationToken.None)).Active!.Kid;
}

/// <summary>
/// One target per host kind: the token service with the test IdP doubling as Shared Signals transmitter, a
/// bystander's live session (whose survival shows that nothing was changed), and a sample resource server protected
/// by the validation library, whose back channel reaches that host (over loopback, or in-process for the Functions app).
/// </summary>
public sealed class CraftedInputTarget : IAsyncDisposable
{
    private readonly WebApplication _api;

    private CraftedInputTarget(TokenServiceTestHost host, TokenPair bystander, WebApplication api, HttpClient resourceServer)
    {
        Host = host;
        Bystander = bystander;
        _api = api;
        ResourceServer = resourceServer;
    }

    public TokenServiceTestHost Host { get; }
    public TokenPair Bystander { get; private set; }
    public HttpClient ResourceServer { get; }
    public TestIdp Idp => Host.Idp;

    private sealed class RewriteHandler(Uri target, HttpMessageHandler inner) : DelegatingHandler(inner)
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            request.RequestUri = new UriBuilder(request.RequestUri!) { Scheme = target.Scheme, Host = target.Host, Port = target.Port }.Uri;
            return base.SendAsync(request, cancellationToken);
        }
    }

    public static async Task<CraftedInputTarget> StartAsync(HostKind kind)
    {
        var idp = new TestIdp();
        var host = await TokenServiceTestHost.StartAsync(kind, new Dictionary<string, string?>
        {
            ["Events:SsfIssuer"] = TestIdp.Issuer,
            ["Events:SsfJwksPath"] = idp.JwksPath,
        }, idp: idp);
        // Granted the API and the token service itself (for the sessions list); its tokens carry one or the other.
        TokenPair bystander;
        using (var exchange = await host.ExchangeAsync(idp.IdToken(Crafted.Bystander), extra: [("audience", "api://orders"), ("audience", TokenServiceTestHost.Issuer)]))
        {
            var json = await JsonAsync(exchange);
            Assert.True(exchange.StatusCode == HttpStatusCode.OK, json.ToString());
            bystander = new TokenPair(json.GetProperty("access_token").GetString()!, json.GetProperty("refresh_token").GetString()!);
        }


        var backchannel = new RewriteHandler(host.BaseAddress, kind == HostKind.Functions ? new FunctionsHttpHandler(host.Services) : new SocketsHttpHandler());
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Services.AddTestResourceServer("api://orders", backchannel);
        builder.Services.AddAuthorization();
        var api = builder.Build();
        api.UseAuthentication();
        api.UseAuthorization();
        api.MapGet("/orders", (HttpContext ctx) => Results.Ok(new { sub = ctx.User.FindFirst("sub")?.Value })).RequireAuthorization();
        var target = new CraftedInputTarget(host, bystander, api, new HttpClient { BaseAddress = await Loopback.StartAsync(api) });

        // The resource server works (discovery, JWKS, introspection): its 401s below are refusals, not misconfiguration.
        using var ok = await target.ResourceServerAsync(bystander.AccessToken);
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        return target;
    }

    public async Task<HttpResponseMessage> ResourceServerAsync(string token)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/orders");
        request.Headers.TryAddWithoutValidation("Authorization", "Bearer " + token);
        return await ResourceServer.SendAsync(request);
    }

    public async Task<HttpResponseMessage> SessionsAsync(string token)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/sessions");
        request.Headers.TryAddWithoutValidation("Authorization", "Bearer " + token);
        return await Host.Client.SendAsync(request);
    }

    public Task<HttpResponseMessage> ExchangeWebAsync(string subjectToken) => Host.ExchangeAsync(subjectToken);

    public Task<HttpResponseMessage> ExchangeSpaAsync(string subjectToken) => Host.ExchangeAsync(subjectToken, "spa", secret: null);

    public Task<HttpResponseMessage> RevokeAsync(string token) =>
        Host.PostFormAsync("/oauth2/revoke", [new("token", token), new("token_type_hint", "access_token")], Basic("web", WebSecret));

    public Task<HttpResponseMessage> IntrospectAsync(string token) => Host.IntrospectAsync(token);

    public Task<HttpResponseMessage> SsfPushAsync(string set) => PostBytesAsync("/events/ssf", Encoding.ASCII.GetBytes(set), "application/secevent+jwt");

    public Task<HttpResponseMessage> DeliverAsync(byte[] body, string contentType = "application/json") =>
        PostBytesAsync("/events/idp?key=" + Uri.EscapeDataString(WebhookSecret), body, contentType);

    public Task<HttpResponseMessage> PostBytesAsync(string path, byte[] body, string contentType, string? origin = null, string? cookie = null, AuthenticationHeaderValue? auth = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        request.Headers.Authorization = auth;
        if (origin is not null)
        {
            request.Headers.Add("Origin", origin);
        }

        if (cookie is not null)
        {
            request.Headers.TryAddWithoutValidation("Cookie", cookie);
        }

        return Host.Client.SendAsync(request);
    }

    /// <summary>Nothing changed: the bystander's session is still live, as introspection and the user's session list show.</summary>
    public async Task AssertBystanderUntouchedAsync()
    {
        Assert.True(await Host.IsActiveAsync(Bystander.AccessToken), "The bystander's session was ended by crafted input.");

        // A token for the sessions routes (audience = the issuer alone), by a refresh that asks for it (RFC 8707).
        using var refresh = await Host.RefreshAsync(Bystander.RefreshToken, extra: [("audience", TokenServiceTestHost.Issuer)]);
        var refreshed = await JsonAsync(refresh);
        Assert.True(refresh.StatusCode == HttpStatusCode.OK, "The bystander's session cannot refresh: " + refreshed);
        Bystander = Bystander with { RefreshToken = refreshed.GetProperty("refresh_token").GetString()! };
        using var sessions = await SessionsAsync(refreshed.GetProperty("access_token").GetString()!);
        Assert.Equal(HttpStatusCode.OK, sessions.StatusCode);
        Assert.Equal(1, (await JsonAsync(sessions)).GetProperty("sessions").GetArrayLength());
    }

    public async ValueTask DisposeAsync()
    {
        ResourceServer.Dispose();
        await _api.DisposeAsync();
        await Host.DisposeAsync();
    }
}

/// <summary>Both hosts, started once for the crafted-input tests.</summary>
public sealed class CraftedInputFixture : IAsyncLifetime
{
    private readonly Dictionary<HostKind, CraftedInputTarget> _targets = [];

    public CraftedInputTarget this[HostKind kind] => _targets[kind];

    public async Task InitializeAsync()
    {
        _targets[HostKind.Standalone] = await CraftedInputTarget.StartAsync(HostKind.Standalone);
        _targets[HostKind.Functions] = await CraftedInputTarget.StartAsync(HostKind.Functions);
    }

    public async Task DisposeAsync()
    {
        foreach (var target in _targets.Values)
        {
            await target.DisposeAsync();
        }
    }
}

/// <summary>What a response must look like; a mismatch is collected as text so one test reports every failing case.</summary>
public static class Expect
{
    public static async Task<string?> OAuthErrorAsync(HttpResponseMessage response, string label, HttpStatusCode status, params string[] errors)
    {
        var body = await response.Content.ReadAsStringAsync();
        if (response.StatusCode != status)
        {
            return $"{label}: expected {(int)status}, got {(int)response.StatusCode}: {Trim(body)}";
        }

        if (response.Content.Headers.ContentType?.MediaType != "application/json")
        {
            return $"{label}: expected application/json, got {response.Content.Headers.ContentType}";
        }

        var error = TryProperty(body, "error");
        return error is not null && errors.Contains(error) && !body.Contains("Exception", StringComparison.Ordinal)
            ? null
            : $"{label}: expected error {string.Join("|", errors)}, got {Trim(body)}";
    }

    public static async Task<string?> ProblemAsync(HttpResponseMessage response, string label, HttpStatusCode status)
    {
        var body = await response.Content.ReadAsStringAsync();
        if (response.StatusCode != status)
        {
            return $"{label}: expected {(int)status}, got {(int)response.StatusCode}: {Trim(body)}";
        }

        return response.Content.Headers.ContentType?.MediaType == "application/problem+json" && TryProperty(body, "title") is not null
            && !body.Contains("Exception", StringComparison.Ordinal)
            ? null
            : $"{label}: expected problem details, got {response.Content.Headers.ContentType}: {Trim(body)}";
    }

    /// <summary>RFC 8935 §2.3: a refused SET is 400 with a JSON <c>err</c> code.</summary>
    public static async Task<string?> SetErrorAsync(HttpResponseMessage response, string label, params string[] errors)
    {
        var body = await response.Content.ReadAsStringAsync();
        var err = response.StatusCode == HttpStatusCode.BadRequest ? TryProperty(body, "err") : null;
        return err is not null && (errors.Length == 0 || errors.Contains(err))
            ? null
            : $"{label}: expected 400 with err {string.Join("|", errors)}, got {(int)response.StatusCode}: {Trim(body)}";
    }

    /// <summary>RFC 7009 §2.2: an invalid token is not an error; 200 and nothing revoked.</summary>
    public static string? Revoked(HttpResponseMessage response, string label) =>
        response.StatusCode == HttpStatusCode.OK ? null : $"{label}: expected 200, got {(int)response.StatusCode}";

    /// <summary>RFC 7662 §2.2: an invalid token is <c>{"active":false}</c>.</summary>
    public static async Task<string?> InactiveAsync(HttpResponseMessage response, string label)
    {
        var body = await response.Content.ReadAsStringAsync();
        return response.StatusCode == HttpStatusCode.OK && body == """{"active":false}""" ? null : $"{label}: expected active:false, got {(int)response.StatusCode}: {Trim(body)}";
    }

    /// <summary>RFC 6750 §3.1: 401 with a Bearer challenge.</summary>
    public static string? Unauthorized(HttpResponseMessage response, string label) =>
        response.StatusCode == HttpStatusCode.Unauthorized && response.Headers.WwwAuthenticate.ToString().StartsWith("Bearer", StringComparison.Ordinal)
            ? null
            : $"{label}: expected 401 with a Bearer challenge, got {(int)response.StatusCode}";

    private static string? TryProperty(string body, string name)
    {
        try
        {
            using var json = JsonDocument.Parse(body);
            return json.RootElement.ValueKind == JsonValueKind.Object && json.RootElement.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String
                ? value.GetString()
                : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static string Trim(string body) => body.Length > 300 ? body[..300] + "…" : body;
}

/// <summary>A generated token and the route it is sent to; printed readably when a property fails.</summary>
public sealed record GeneratedToken(int Route, bool Signed, string Header, string Payload, (string Name, string Value)[] Overrides)
{
    public static readonly string[] RouteNames = ["GET /sessions", "exchange(web)", "exchange(spa)", "revoke", "introspect", "ssf push", "resource server"];

    public override string ToString() =>
        Readable($"{RouteNames[Route]} " + (Signed
            ? "signed, claims overridden by " + string.Join(",", Overrides.Select(o => $"\"{o.Name}\":{o.Value}"))
            : $"header {Header} payload {Payload}"));

    internal static string Readable(string text) => text
        .Replace("\u0001", "<ED A0 80>", StringComparison.Ordinal).Replace("\u0002", "<FF>", StringComparison.Ordinal)
        .Replace("\u0003", "<C3 28>", StringComparison.Ordinal).Replace("\u0004", "<C0 AF>", StringComparison.Ordinal);
}

/// <summary>A generated event delivery.</summary>
public sealed record GeneratedDelivery(string Body, string ContentType)
{
    public override string ToString() => GeneratedToken.Readable($"{ContentType} {Body}");
}

/// <summary>
/// FsCheck generators over a small grammar of JSON text (FsCheck 3 C# API, FsCheck.Fluent): members named as the
/// readers look them up, values of every JSON kind including lone surrogate escapes, invalid UTF-8, huge numbers
/// and deep nesting.
/// </summary>
public static class CraftedGen
{
    private static readonly string[] Strings =
    [
        "\"RS256\"", "\"ES256\"", "\"PS256\"", "\"none\"", "\"HS256\"", "\"at+jwt\"", "\"application/at+jwt\"", "\"secevent+jwt\"", "\"JWT\"", "\"\"", "\"k\"",
        "\"iss_sub\"", "\"opaque\"", "\"1.0\"", "\"2030-01-01T00:00:00Z\"", "\"u-1\"",
        "\"\\ud800\"", "\"\\udfff\"", "\"a\\ud800b\"", "\"\\udbff\\u0041\"", "\"\\ud83d\\ude00\"", "\"\u0001\"", "\"x\u0002\"", "\"\u0003\"", "\"\u0004\"",
        "\"\\u0000\"", "\"\\\\\"", "\"\\\"\"",
    ];

    private static readonly string[] Numbers = ["0", "-1", "1.5", "1e400", "-1e400", "99999999999999999999999", "253402300800", "1700000000", "-0", "1E-400", "99999999999999"];

    private static readonly string[] Literals = ["true", "false", "null"];

    private static readonly string[] HeaderKeys = ["alg", "alg", "kid", "kid", "typ", "typ", "crit", "jwk", "jku", "x5u", "x5c", "cty", "b64", "\\u0061lg", "\\ud800", "\u0001"];

    private static readonly string[] ClaimKeys =
        ["iss", "sub", "aud", "exp", "nbf", "iat", "jti", "sid", "client_id", "scope", "auth_time", "acr", "amr", "nonce", "events", "sub_id", "x", "\\u0073ub", "\\ud800"];

    private static readonly string[] EventKeys =
        ["id", "id", "eventType", "eventType", "eventTime", "topic", "subject", "data", "data", "dataVersion", "specversion", "type", "source", "time", "datacontenttype", "data_base64", "\\ud800x"];

    private static readonly string[] DataKeys = ["userId", "userId", "occurredAt", "validationCode", "resourceData", "resource", "data", "user_id", "type", "\\udfffuserId"];

    private static readonly string[] EventTypes =
    [
        "\"TokenService.Idp.AccountDisabled\"", "\"TokenService.Idp.AccountDeleted\"", "\"TokenService.Idp.PasswordReset\"", "\"TokenService.Idp.SessionsRevoked\"",
        "\"TokenService.Idp.SecurityEvent\"", "\"Microsoft.Graph.UserDeleted\"", "\"Microsoft.Graph.UserUpdated\"", "\"Microsoft.EventGrid.SubscriptionValidationEvent\"",
        "\"auth0.logs.sdu\"", "\"https://schemas.openid.net/secevent/caep/event-type/session-revoked\"",
    ];

    public static Gen<string> Scalar { get; } = Gen.Frequency((3, Gen.Elements(Strings)), (2, Gen.Elements(Numbers)), (1, Gen.Elements(Literals)));

    /// <summary>A JSON value nested at most <paramref name="depth"/> levels, or now and then far deeper than any reader allows.</summary>
    public static Gen<string> Value(int depth) => depth <= 0
        ? Scalar
        : Gen.Frequency(
            (8, Scalar),
            (2, Gen.Choose(0, 3).SelectMany(n => Gen.ArrayOf(Value(depth - 1), n)).Select(items => "[" + string.Join(",", items) + "]")),
            (2, ObjectOf(ClaimKeys.Concat(DataKeys).ToArray(), _ => Value(depth - 1), 3)),
            (1, Gen.Choose(1, 250).Select(Crafted.Deep)));

    /// <summary>A JSON object of up to <paramref name="maxMembers"/> members (names may repeat) with values from <paramref name="valueFor"/>.</summary>
    public static Gen<string> ObjectOf(string[] keys, Func<string, Gen<string>> valueFor, int maxMembers) =>
        Gen.Choose(0, maxMembers)
            .SelectMany(n => Gen.ArrayOf(Gen.Elements(keys).SelectMany(k => valueFor(k).Select(v => "\"" + k + "\":" + v)), n))
            .Select(members => "{" + string.Join(",", members) + "}");

    public static Gen<string> Header { get; } = Gen.Frequency((9, ObjectOf(HeaderKeys, _ => Value(2), 6)), (1, Value(1)));

    public static Gen<(string Name, string Value)[]> ClaimOverrides { get; } =
        Gen.Choose(1, 4).SelectMany(n => Gen.ArrayOf(Gen.Elements(ClaimKeys).SelectMany(k => Value(2).Select(v => (k, v))), n));

    public static Gen<GeneratedToken> Token { get; } =
        from route in Gen.Choose(0, GeneratedToken.RouteNames.Length - 1)
        from signed in Gen.Elements(false, true)
        from header in Header
        from payload in Gen.Frequency((3, ObjectOf(ClaimKeys, _ => Value(2), 6)), (1, Value(2)))
        from overrides in ClaimOverrides
        select new GeneratedToken(route, signed, header, payload, overrides);

    private static Gen<string> DataValue(string key) => key switch
    {
        "resourceData" or "data" => Gen.Frequency((2, ObjectOf(DataKeys, DataValue, 3)), (1, Value(1))),
        _ => Value(1),
    };

    private static Gen<string> EventValue(string key) => key switch
    {
        "eventType" or "type" => Gen.Frequency((3, Gen.Elements(EventTypes)), (1, Value(1))),
        "specversion" => Gen.Frequency((3, Gen.Constant("\"1.0\"")), (1, Value(1))),
        "data" => Gen.Frequency((3, ObjectOf(DataKeys, DataValue, 4)), (1, Value(2))),
        "data_base64" => Gen.Frequency(
            (2, ObjectOf(DataKeys, DataValue, 3).Select(json => "\"" + Convert.ToBase64String(Crafted.Bytes(json)) + "\"")),
            (1, Value(1))),
        _ => Value(1),
    };

    public static Gen<string> Event { get; } = Gen.Frequency((9, ObjectOf(EventKeys, EventValue, 7)), (1, Value(1)));

    public static Gen<GeneratedDelivery> Delivery { get; } =
        from body in Gen.Frequency(
            (6, Gen.Choose(1, 3).SelectMany(n => Gen.ArrayOf(Event, n)).Select(events => "[" + string.Join(",", events) + "]")),
            (3, Event),
            (1, Value(2)))
        from contentType in Gen.Elements("application/json", "application/cloudevents+json", "application/cloudevents-batch+json")
        select new GeneratedDelivery(body, contentType);
}
