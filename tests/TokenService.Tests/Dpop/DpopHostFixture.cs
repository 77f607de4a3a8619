using System.Net.Http.Headers;
using TokenService.Tests.Infrastructure;
using static TokenService.Tests.Infrastructure.TokenServiceTestHost;
using Microsoft.Extensions.Time.Testing;

namespace TokenService.Tests.Dpop;

/// <summary>
/// A host for the DPoP tests on a clock that stands still (proofs are made at <see cref="Now"/>), with one more client:
/// confidential "bound-web", which must send a DPoP proof with every token request (<c>Clients__N__RequireDpop</c>).
/// </summary>
public class DpopHostFixture : IAsyncLifetime
{
    public const string BoundClient = "bound-web";
    public const string BoundSecret = "bound-web-secret-123";
    public const string TokenUri = Issuer + "/oauth2/token";
    public const string SessionsUri = Issuer + "/sessions";

    /// <summary>The hosts' clock: fake in process; the system clock's, offset, for a host in another process.</summary>
    public virtual TimeProvider Time { get; } = new FakeTimeProvider(DateTimeOffset.UtcNow);

    public TokenServiceTestHost Host { get; private set; } = null!;

    public DateTimeOffset Now => Time.GetUtcNow();

    /// <summary>Moves the hosts' clock forward (fires the in-process hosts' timers that come due, as FakeTimeProvider does).</summary>
    public void Advance(TimeSpan by)
    {
        switch (Time)
        {
            case FakeTimeProvider fake:
                fake.Advance(by);
                break;
            case SystemClockWithOffset offset:
                offset.Advance(by);
                break;
            default:
                throw new InvalidOperationException($"{Time.GetType().Name} cannot be moved.");
        }
    }

    protected virtual HostKind Kind => HostKind.Standalone;

    protected virtual void Configure(Dictionary<string, string?> settings)
    {
    }

    public async Task InitializeAsync()
    {
        var settings = HostSettings();
        if (Kind != HostKind.RealFunctionsHost || RealFunctionsHost.SkipReason is null) // a skipped tier starts nothing
        {
            Host = await StartHostAsync(settings);
        }
    }

    /// <summary>The settings this fixture's host runs with on top of the defaults.</summary>
    public Dictionary<string, string?> HostSettings()
    {
        var settings = new Dictionary<string, string?>
        {
            ["Clients:5:ClientId"] = BoundClient,
            ["Clients:5:Type"] = "confidential",
            ["Clients:5:Secret"] = BoundSecret,
            ["Clients:5:RequireDpop"] = "true",
            ["Clients:5:AllowedAudiences:0"] = "api://orders",
            ["Clients:5:AllowedScopes:0"] = "orders.read",
        };
        Configure(settings);
        return settings;
    }

    public async Task DisposeAsync()
    {
        if (Host is not null)
        {
            await Host.DisposeAsync();
        }
    }

    protected virtual Task<TokenServiceTestHost> StartHostAsync(Dictionary<string, string?> settings) => StartAsync(Kind, settings, time: Time);

    /// <summary>A token request with an optional <c>DPoP</c> header.</summary>
    public Task<HttpResponseMessage> TokenAsync(
        IEnumerable<KeyValuePair<string, string>> form, string? proof, AuthenticationHeaderValue? auth = null, string? origin = null, string? cookie = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/oauth2/token") { Content = new FormUrlEncodedContent(form) };
        request.Headers.Authorization = auth;
        if (origin is not null)
        {
            request.Headers.Add("Origin", origin);
        }

        if (cookie is not null)
        {
            request.Headers.Add("Cookie", cookie);
        }

        if (proof is not null)
        {
            request.Headers.TryAddWithoutValidation("DPoP", proof);
        }

        return Host.Client.SendAsync(request);
    }

    /// <summary>Token exchange for confidential <paramref name="clientId"/> with a proof (or none).</summary>
    public Task<HttpResponseMessage> ExchangeAsync(string? proof, string subject, string clientId = "web", string secret = WebSecret, string? audience = null, string? idToken = null)
    {
        var form = new List<KeyValuePair<string, string>>
        {
            new("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
            new("subject_token", idToken ?? Host.Idp.IdToken(subject)),
            new("subject_token_type", "urn:ietf:params:oauth:token-type:id_token"),
        };
        if (audience is not null)
        {
            form.Add(new("audience", audience));
        }

        return TokenAsync(form, proof, Basic(clientId, secret));
    }

    public Task<HttpResponseMessage> RefreshAsync(string refreshToken, string? proof, string clientId = "web", string secret = WebSecret, string? audience = null)
    {
        var form = new List<KeyValuePair<string, string>> { new("grant_type", "refresh_token"), new("refresh_token", refreshToken) };
        if (audience is not null)
        {
            form.Add(new("audience", audience));
        }

        return TokenAsync(form, proof, Basic(clientId, secret));
    }

    /// <summary>A request to a session endpoint with <c>Authorization: {scheme} {token}</c> and an optional proof.</summary>
    public Task<HttpResponseMessage> SessionsAsync(HttpMethod method, string path, string scheme, string? token, string? proof = null, IEnumerable<KeyValuePair<string, string>>? headers = null)
    {
        var request = new HttpRequestMessage(method, path);
        if (token is not null)
        {
            request.Headers.TryAddWithoutValidation("Authorization", scheme + " " + token);
        }

        if (proof is not null)
        {
            request.Headers.TryAddWithoutValidation("DPoP", proof);
        }

        foreach (var (name, value) in headers ?? [])
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }

        return Host.Client.SendAsync(request);
    }
}

public sealed class DpopFunctionsHostFixture : DpopHostFixture
{
    protected override HostKind Kind => HostKind.Functions;
}

/// <summary>The DPoP host with server-provided nonces required (<c>Dpop__RequireNonce</c>).</summary>
public class DpopNonceHostFixture : DpopHostFixture
{
    public const string NonceSecret = "dpop-nonce-secret-0123456789abcdef";

    protected override void Configure(Dictionary<string, string?> settings)
    {
        settings["Dpop:RequireNonce"] = "true";
        settings["Dpop:NonceSecret"] = NonceSecret;
    }
}

public sealed class DpopNonceFunctionsHostFixture : DpopNonceHostFixture
{
    protected override HostKind Kind => HostKind.Functions;
}

/// <summary>
/// The DPoP host on the real Functions host (shared, see <see cref="RealFunctionsHostPool"/>). It runs on the system
/// clock, so the test's clock follows the system clock too; a test that moves the host's clock cannot run here.
/// </summary>
public sealed class DpopRealFunctionsHostFixture(RealFunctionsHostPool pool) : DpopHostFixture
{
    public override TimeProvider Time { get; } = new SystemClockWithOffset();

    protected override HostKind Kind => HostKind.RealFunctionsHost;

    protected override Task<TokenServiceTestHost> StartHostAsync(Dictionary<string, string?> settings) => pool.GetAsync(RealFunctionsHostPool.Default);
}

/// <summary>The DPoP host with nonces required, on the real Functions host (as <see cref="DpopRealFunctionsHostFixture"/>).</summary>
public sealed class DpopNonceRealFunctionsHostFixture(RealFunctionsHostPool pool) : DpopNonceHostFixture
{
    public override TimeProvider Time { get; } = new SystemClockWithOffset();

    protected override HostKind Kind => HostKind.RealFunctionsHost;

    protected override Task<TokenServiceTestHost> StartHostAsync(Dictionary<string, string?> settings) => pool.GetAsync(RealFunctionsHostPool.DpopNonce);
}
