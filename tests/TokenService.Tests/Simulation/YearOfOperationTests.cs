using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Reflection;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Http;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Microsoft.IdentityModel.JsonWebTokens;
using TokenFunctions;
using TokenService.Diagnostics;
using TokenService.Dpop;
using TokenService.Events;
using TokenService.Idp;
using TokenService.Keys;
using TokenService.Sessions;
using TokenService.Tests.Events;
using TokenService.Tests.Infrastructure;
using TokenService.Tests.KeyVault;
using TokenService.Tokens;
using Xunit.Abstractions;
using static TokenService.Tests.Infrastructure.TokenServiceTestHost;

namespace TokenService.Tests.Simulation;

/// <summary>
/// A year of operation, simulated: the composed Functions app (its real service registrations, <see cref="FunctionsAppFactory"/>)
/// run for 400 simulated days on a <see cref="FakeTimeProvider"/>. Its timers fire when their NCRONTAB schedules (read
/// from the trigger attributes) are due, users sign in, refresh and sign out around the clock, the resource-server
/// library validates their tokens as an API does, IdP events arrive, the population turns over, and an operator rotates
/// the key at once on day 200. The in-test Key Vault enforces throttling, a Deny policy on keys without a bounded expiry
/// and refuses to sign with an expired key; the Graph stand-in enforces the subscription maximum expiration. The
/// invariants (docs/operations.md, "What holds over time") are checked as the year runs; each failure names the day.
/// </summary>
public sealed class YearOfOperationTests(ITestOutputHelper output)
{
    [Fact]
    public async Task A_year_of_operation_keeps_every_promise_the_service_makes_over_time()
    {
        await using var simulation = await YearSimulation.StartAsync();
        var watch = Stopwatch.StartNew();

        await simulation.RunAsync(TimeSpan.FromDays(400));

        watch.Stop();
        foreach (var line in simulation.Report(watch.Elapsed))
        {
            output.WriteLine(line);
        }

        // What the year must have exercised, so that a simulation that silently did nothing cannot pass.
        simulation.AssertExercised();
    }
}

/// <summary>The simulated year: the app, its dependencies' stand-ins, the population and the invariants.</summary>
internal sealed class YearSimulation : IAsyncDisposable
{
    public static readonly DateTimeOffset Start = new(2027, 1, 1, 0, 0, 0, TimeSpan.Zero);

    /// <summary>Users active at any time; every day <see cref="DailyTurnover"/> of them leave and as many new users join.</summary>
    private const int Population = 16;
    private const int DailyTurnover = 2;

    /// <summary>The steady rate, per simulated hour, kept small so that the year runs in seconds.</summary>
    private const double SignInsPerHour = 0.25, RefreshesPerHour = 0.25, SignOutsPerHour = 0.125;

    /// <summary>The day (from the start) on which the operator rotates the key at once (POST /management/keys/rotate?immediate=true).</summary>
    private const int ImmediateRotationDay = 200;

    /// <summary>Azure Policy (Deny): keys must expire within this (the service is told the same maximum).</summary>
    private static readonly TimeSpan PolicyMaximumKeyValidity = TimeSpan.FromDays(100);

    private readonly FakeTimeProvider _time;
    private readonly FakeKeyVaultServer _vault;
    private readonly GraphStandIn _graph;
    private readonly TokenServiceTestHost _host;
    private readonly ServiceProvider _api;
    private readonly Random _random = new(27);
    private readonly PriorityQueue<Func<Task>, (DateTimeOffset At, long Sequence)> _agenda = new();
    private long _sequence;

    private readonly List<User> _users = [];
    private int _nextUser;
    private readonly Dictionary<string, KeyRecord> _keys = new(StringComparer.Ordinal);
    private readonly Queue<(DateTimeOffset At, string Kind)> _recent = new(); // sign-ins, revocations and events, for the storage bounds
    private readonly List<(string Json, DateTimeOffset At)> _deliveredEvents = [];
    private string? _activeKid;

    // Counts for the report.
    private int _signIns, _refreshes, _refreshesRefusedAtLifetime, _absoluteEnds, _signOuts, _accessTokensRevoked, _events, _redeliveries;
    private int _validations, _activeKeyChanges, _purged, _timerRuns, _jwksChecks, _maxJwks;
    private int _maxSessions, _maxPartitions, _maxDenied, _maxIdTokenMarkers, _maxProcessedEvents;
    private string? _immediateRotation;

    private YearSimulation(FakeTimeProvider time, FakeKeyVaultServer vault, GraphStandIn graph, TokenServiceTestHost host, ServiceProvider api)
    {
        _time = time;
        _vault = vault;
        _graph = graph;
        _host = host;
        _api = api;
    }

    private DateTimeOffset Now => _time.GetUtcNow();

    private int Day => (int)((Now - Start).Ticks / TimeSpan.TicksPerDay);

    public static async Task<YearSimulation> StartAsync()
    {
        var time = new FakeTimeProvider(Start);
        var vault = await FakeKeyVaultServer.StartAsync();
        vault.Clock = time;
        // Key Vault service limits: software-protected keys, transactions other than CREATE, 2,000 per 10 seconds per vault.
        vault.ThrottleSliding(2000, TimeSpan.FromSeconds(10));
        // Azure Policy with effect Deny: no key without an expiry, none valid for longer than the maximum.
        vault.PolicyRequiresExpiry = true;
        vault.PolicyMaximumValidity = PolicyMaximumKeyValidity;
        vault.RefuseSignOutsideValidity = true;

        var graph = new GraphStandIn(time);
        var settings = GraphSubscriptionManagerTests.Settings();
        settings["Keys:KeyVaultUri"] = vault.VaultUri.AbsoluteUri;
        settings["Keys:KeyName"] = "token-signing";
        settings["Keys:Algorithm"] = "ES256";
        settings["Keys:MaximumKeyValidity"] = PolicyMaximumKeyValidity.ToString("c", CultureInfo.InvariantCulture);

        // The request rate limiter keeps time on the monotonic clock (System.Threading.RateLimiting takes no TimeProvider):
        // a year compressed into seconds is thousands of requests per wall-clock second, which it would rightly refuse.
        settings["RateLimit:Enabled"] = "false";
        var host = await StartFunctionsAsync(settings, time: time, services: s =>
        {
            s.AddSingleton(InTestVaults.Client(vault.VaultUri));
            s.AddSingleton(GraphSubscriptionManagerTests.Client(graph));
        });

        // The API: JwtBearer and the library's session check, its backchannel (discovery, JWKS, introspection) reaching
        // the Functions app's HTTP functions in process, on the simulation's clock.
        var api = new ServiceCollection();
        api.AddLogging();
        api.AddTestResourceServer("api://orders", new FunctionsHttpHandler(host.Services), time: time);
        return new YearSimulation(time, vault, graph, host, api.BuildServiceProvider());
    }

    // ---- the agenda ---------------------------------------------------------------------------------

    private void At(DateTimeOffset at, Func<Task> action) => _agenda.Enqueue(action, (at, _sequence++));

    public async Task RunAsync(TimeSpan length)
    {
        var end = Start + length;
        foreach (var timer in TimerSchedule.Of(typeof(TimerFunctions)))
        {
            if (timer.RunOnStartup)
            {
                At(Start, () => FireAsync(timer, reschedule: false));
            }

            At(timer.NextAfter(Start), () => FireAsync(timer, reschedule: true));
        }

        for (var i = 0; i < Population; i++)
        {
            _users.Add(new User("user-" + _nextUser++.ToString("D4", CultureInfo.InvariantCulture), Marathon: i == 0));
        }

        At(Start, HourAsync);
        At(Start + TimeSpan.FromMinutes(5), DailyAsync);
        At(Start + TimeSpan.FromDays(ImmediateRotationDay) + TimeSpan.FromHours(12) + TimeSpan.FromMinutes(7), RotateImmediatelyAsync);

        while (_agenda.TryDequeue(out var action, out var when) && when.At <= end)
        {
            if (when.At > Now)
            {
                _time.Advance(when.At - Now);
            }

            await action();
        }
    }

    /// <summary>Runs a timer function as the Functions host does when its schedule is due: a new instance, a TimerInfo.</summary>
    private async Task FireAsync(TimerSchedule timer, bool reschedule)
    {
        _timerRuns++;
        var before = StoredRecords();
        using (var scope = _host.Services.CreateScope())
        {
            var instance = ActivatorUtilities.CreateInstance<TimerFunctions>(scope.ServiceProvider);
            await (Task)timer.Method.Invoke(instance, [new TimerInfo(), CancellationToken.None])!;
        }

        if (timer.Name == "KeyRotationCheck")
        {
            await ObserveKeysAsync();
        }

        if (timer.Name == "ExpiredStateCleanup")
        {
            _purged += before - StoredRecords(); // nothing else runs meanwhile: what is gone was purged
        }

        if (reschedule)
        {
            At(timer.NextAfter(Now), () => FireAsync(timer, reschedule: true));
        }
    }

    /// <summary>One hour of the population: sign-ins, refreshes, sign-outs and IdP events at random minutes.</summary>
    private Task HourAsync()
    {
        var hour = Now;
        At(hour + TimeSpan.FromHours(1), HourAsync);
        if (_random.NextDouble() < SignInsPerHour)
        {
            At(hour + Minutes(), SignInAsync);
        }

        if (_random.NextDouble() < RefreshesPerHour)
        {
            At(hour + Minutes(), RefreshSomeoneAsync);
        }

        if (_random.NextDouble() < SignOutsPerHour)
        {
            At(hour + Minutes(), SignOutSomeoneAsync);
        }

        if (hour.Hour % 6 == 0)
        {
            At(hour + Minutes(), RefreshMarathonAsync);
        }

        if (hour.Hour % 8 == 3)
        {
            At(hour + Minutes(), DeliverIdpEventAsync);
        }

        // The Graph subscription never lapses: checked every hour, whatever the timers did.
        if (_graph.Live.Count != 1)
        {
            Fail($"the Graph subscription lapsed: {_graph.Live.Count} live subscriptions");
        }

        return Task.CompletedTask;
    }

    private TimeSpan Minutes() => TimeSpan.FromMinutes(_random.Next(0, 60)) + TimeSpan.FromSeconds(_random.Next(0, 60));

    // ---- users ----------------------------------------------------------------------------------------

    private sealed record User(string Id, bool Marathon)
    {
        public Session? Session { get; set; }

        /// <summary>Left the population: signs in no more, and signs out or lets the session lapse.</summary>
        public bool Leaving { get; set; }
    }

    private sealed class Session(string sid, string refreshToken, DateTimeOffset createdAt)
    {
        public string Sid { get; } = sid;
        public string RefreshToken { get; set; } = refreshToken;
        public DateTimeOffset CreatedAt { get; } = createdAt;
        public DateTimeOffset LastActivity { get; set; } = createdAt;
        public List<IssuedToken> Tokens { get; } = [];
    }

    /// <summary>An access token and whether the service still promises it validates (not signed out, revoked or ended by the IdP).</summary>
    private sealed class IssuedToken(string jwt, string kid, string user, DateTimeOffset issuedAt, DateTimeOffset expiresAt)
    {
        public string Jwt { get; } = jwt;
        public string Kid { get; } = kid;
        public string User { get; } = user;
        public DateTimeOffset IssuedAt { get; } = issuedAt;
        public DateTimeOffset ExpiresAt { get; } = expiresAt;
        public bool Withdrawn { get; set; }
    }

    private sealed class KeyRecord
    {
        public DateTimeOffset LatestIssuedAt { get; set; } = DateTimeOffset.MinValue;
        public DateTimeOffset LatestExpiry { get; set; } = DateTimeOffset.MinValue;
        public DateTimeOffset? RetiresAt { get; set; }
        public string? ProviderKeyId { get; set; }
    }

    private async Task SignInAsync()
    {
        var candidates = _users.Where(u => u.Session is null && !u.Leaving).ToList();
        if (candidates.Count == 0)
        {
            return;
        }

        var user = candidates[_random.Next(candidates.Count)];
        using var response = await _host.ExchangeAsync(_host.Idp.IdToken(user.Id));
        var json = await JsonAsync(response);
        if (response.StatusCode != HttpStatusCode.OK)
        {
            Fail($"sign-in of {user.Id} refused: {(int)response.StatusCode} {json}");
        }

        _signIns++;
        _recent.Enqueue((Now, "sign-in"));
        var access = json.GetProperty("access_token").GetString()!;
        var sid = new JsonWebToken(access).GetClaim("sid").Value;
        user.Session = new Session(sid, json.GetProperty("refresh_token").GetString()!, Now);
        await IssuedAsync(user, access);
    }

    private Task RefreshSomeoneAsync()
    {
        var holders = _users.Where(u => u.Session is not null && !u.Marathon).ToList();
        return holders.Count == 0 ? Task.CompletedTask : RefreshAsync(holders[_random.Next(holders.Count)]);
    }

    /// <summary>One user refreshes every six hours and never signs out: the refresh family meets its absolute lifetime.</summary>
    private Task RefreshMarathonAsync()
    {
        var marathon = _users.FirstOrDefault(u => u.Marathon);
        return marathon switch
        {
            null => Task.CompletedTask,
            { Session: null } => SignInAsMarathonAsync(marathon),
            _ => RefreshAsync(marathon),
        };
    }

    private async Task SignInAsMarathonAsync(User marathon)
    {
        using var response = await _host.ExchangeAsync(_host.Idp.IdToken(marathon.Id));
        var json = await JsonAsync(response);
        if (response.StatusCode != HttpStatusCode.OK)
        {
            Fail($"sign-in of {marathon.Id} refused: {(int)response.StatusCode} {json}");
        }

        _signIns++;
        _recent.Enqueue((Now, "sign-in"));
        var access = json.GetProperty("access_token").GetString()!;
        marathon.Session = new Session(new JsonWebToken(access).GetClaim("sid").Value, json.GetProperty("refresh_token").GetString()!, Now);
        await IssuedAsync(marathon, access);
    }

    private async Task RefreshAsync(User user)
    {
        var session = user.Session!;
        var options = _host.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<TokenService.Configuration.TokenServiceOptions>>().Value;
        var absoluteEnd = session.CreatedAt + options.SessionAbsoluteLifetime;
        var idleEnd = session.LastActivity + options.SessionIdleTimeout;
        var refreshEnd = session.LastActivity + options.RefreshTokenLifetime;
        var end = new[] { absoluteEnd, idleEnd, refreshEnd }.Min();
        using var response = await _host.RefreshAsync(session.RefreshToken);
        var json = await JsonAsync(response);
        if (Now >= end)
        {
            // RFC 6749 §5.2: an expired refresh token is invalid_grant. No refresh family survives its absolute lifetime.
            if (response.StatusCode == HttpStatusCode.OK && Now != end)
            {
                Fail($"the refresh family of {user.Id} (session {session.Sid}, opened {session.CreatedAt:O}) was refreshed after its end {end:O}");
            }

            if (response.StatusCode != HttpStatusCode.OK)
            {
                if (json.GetProperty("error").GetString() != "invalid_grant")
                {
                    Fail($"a refresh after the session's end got {(int)response.StatusCode} {json}, not invalid_grant");
                }

                _refreshesRefusedAtLifetime++;
                _absoluteEnds += Now >= absoluteEnd ? 1 : 0;
                user.Session = null;
                Withdraw(session); // its access tokens end with it (the service promised nothing beyond the session)
                return;
            }
        }

        if (response.StatusCode != HttpStatusCode.OK)
        {
            Fail($"refresh of {user.Id} (session {session.Sid}, opened {session.CreatedAt:O}, last active {session.LastActivity:O}) refused before its end {end:O}: {(int)response.StatusCode} {json}");
        }

        _refreshes++;
        session.RefreshToken = json.GetProperty("refresh_token").GetString()!;
        session.LastActivity = Now;
        await IssuedAsync(user, json.GetProperty("access_token").GetString()!);
    }

    private async Task SignOutSomeoneAsync()
    {
        var holders = _users.Where(u => u.Session is not null && !u.Marathon).ToList();
        if (holders.Count == 0)
        {
            return;
        }

        var user = holders[_random.Next(holders.Count)];
        var session = user.Session!;

        // Half of the sign-outs also revoke the latest access token (RFC 7009), which puts its jti on the deny list.
        if (_random.Next(2) == 0 && session.Tokens.LastOrDefault(t => t.ExpiresAt > Now) is { } latest)
        {
            using var revokeAccess = await _host.PostFormAsync("/oauth2/revoke", [new("token", latest.Jwt), new("token_type_hint", "access_token")], Basic("web", WebSecret));
            await ExpectAsync(revokeAccess, HttpStatusCode.OK, "revoking an access token");
            _accessTokensRevoked++;
            _recent.Enqueue((Now, "deny"));
        }

        using var revoke = await _host.PostFormAsync("/oauth2/revoke", [new("token", session.RefreshToken), new("token_type_hint", "refresh_token")], Basic("web", WebSecret));
        await ExpectAsync(revoke, HttpStatusCode.OK, "signing out (revoking the refresh token)");
        _signOuts++;
        user.Session = null;
        Withdraw(session);
    }

    private async Task DeliverIdpEventAsync()
    {
        // Now and then Event Grid delivers a recent event again (at least once): acknowledged, and it changes nothing,
        // not even the sessions its user opened since.
        if (_deliveredEvents.Count > 0 && _deliveredEvents[^1].At > Now - TimeSpan.FromHours(12) && _random.Next(4) == 0)
        {
            using var again = await PostEventAsync(_deliveredEvents[^1].Json);
            await ExpectAsync(again, HttpStatusCode.OK, "a redelivered IdP event");
            _redeliveries++;
            return;
        }

        var user = _users[_random.Next(_users.Count)];
        var type = _random.Next(2) == 0 ? IdpEventTypes.AccountDisabled : IdpEventTypes.SessionsRevoked;
        var json = new JsonArray(new JsonObject
        {
            ["id"] = Guid.NewGuid().ToString(),
            ["topic"] = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.EventGrid/topics/idp",
            ["subject"] = "users/" + user.Id,
            ["eventType"] = type,
            ["eventTime"] = Now.ToString("O", CultureInfo.InvariantCulture),
            ["dataVersion"] = "1",
            ["data"] = new JsonObject { ["userId"] = user.Id },
        }).ToJsonString();
        using var response = await PostEventAsync(json);
        await ExpectAsync(response, HttpStatusCode.OK, "an IdP event");
        _events++;
        _recent.Enqueue((Now, "event"));
        _deliveredEvents.Add((json, Now));
        if (_deliveredEvents.Count > 16)
        {
            _deliveredEvents.RemoveAt(0);
        }

        if (user.Session is { } session)
        {
            user.Session = null;
            Withdraw(session);
        }
    }

    private Task<HttpResponseMessage> PostEventAsync(string json)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/events/idp?key=" + WebhookSecret) { Content = new StringContent(json, Encoding.UTF8, "application/json") };
        return _host.Client.SendAsync(request);
    }

    private async Task RotateImmediatelyAsync()
    {
        var before = _activeKid;
        using var response = await _host.PostFormAsync("/management/keys/rotate", [new("immediate", "true")], Basic("ops", OpsSecret));
        var body = await response.Content.ReadAsStringAsync();
        if (response.StatusCode != HttpStatusCode.OK)
        {
            Fail($"the operator's immediate rotation was refused: {(int)response.StatusCode} {body}");
        }

        await ObserveKeysAsync();
        if (_activeKid == before)
        {
            Fail($"after the immediate rotation kid {before} still signs");
        }

        _immediateRotation = $"day {Day}: {before} -> {_activeKid}";
    }

    private static void Withdraw(Session session)
    {
        foreach (var token in session.Tokens)
        {
            token.Withdrawn = true;
        }

        session.Tokens.Clear();
    }

    // ---- tokens and keys ------------------------------------------------------------------------------

    /// <summary>A token was issued: it must validate now, and (unless withdrawn) still a second before its exp.</summary>
    private async Task IssuedAsync(User user, string jwt)
    {
        var parsed = new JsonWebToken(jwt);
        var token = new IssuedToken(jwt, parsed.Kid, user.Id, new DateTimeOffset(parsed.IssuedAt, TimeSpan.Zero), new DateTimeOffset(parsed.ValidTo, TimeSpan.Zero));
        user.Session!.Tokens.Add(token);
        user.Session.Tokens.RemoveAll(t => t.ExpiresAt <= Now);

        // No key signs after its retirement, and only the active key signs.
        var set = await _host.Services.GetRequiredService<ISigningKeyService>().GetKeySetAsync(CancellationToken.None);
        ObserveKeys(set);
        if (set.Find(token.Kid) is not { State: SigningKeyState.Active } signer)
        {
            Fail($"a token was signed with kid {token.Kid}, which is {set.Find(token.Kid)?.State.ToString() ?? "not published"}");
            return;
        }

        var key = Key(token.Kid);
        key.ProviderKeyId = signer.ProviderKeyId;
        if (key.RetiresAt is { } retired && token.IssuedAt > retired)
        {
            Fail($"kid {token.Kid} signed a token at {token.IssuedAt:O}, after its retirement at {retired:O}");
        }

        key.LatestIssuedAt = token.IssuedAt > key.LatestIssuedAt ? token.IssuedAt : key.LatestIssuedAt;
        key.LatestExpiry = token.ExpiresAt > key.LatestExpiry ? token.ExpiresAt : key.LatestExpiry;

        await CheckTokenAsync(token, "at issue", checkJwks: false); // it verified against the JWKS the API just read
        At(token.ExpiresAt - TimeSpan.FromSeconds(1), () => CheckTokenAsync(token, "a second before exp", checkJwks: true));
    }

    private KeyRecord Key(string kid)
    {
        if (!_keys.TryGetValue(kid, out var key))
        {
            _keys[kid] = key = new KeyRecord();
        }

        return key;
    }

    private async Task CheckTokenAsync(IssuedToken token, string when, bool checkJwks)
    {
        if (checkJwks)
        {
            await CheckJwksAsync();
        }

        if (token.Withdrawn)
        {
            return;
        }

        _validations++;
        using var scope = _api.CreateScope();
        var context = new DefaultHttpContext { RequestServices = scope.ServiceProvider };
        context.Request.Method = "GET";
        context.Request.Scheme = ResourceServerSetup.PublicOrigin.Scheme;
        context.Request.Host = new HostString(ResourceServerSetup.PublicOrigin.Authority);
        context.Request.Path = "/orders";
        context.Request.Headers.Authorization = "Bearer " + token.Jwt;
        var result = await context.AuthenticateAsync(JwtBearerDefaults.AuthenticationScheme);
        if (!result.Succeeded)
        {
            using var introspection = await _host.IntrospectAsync(token.Jwt);
            Fail($"(introspection now: {(int)introspection.StatusCode} {await introspection.Content.ReadAsStringAsync()}) "
                + $"the token of {token.User} issued {token.IssuedAt:O} (kid {token.Kid}, exp {token.ExpiresAt:O}) was refused by the resource server {when} after {_validations} validations: {result.Failure?.Message ?? "no result"}");
        }
    }

    /// <summary>The JWKS never lacks the key of an unexpired token and never exceeds Keys:MaxPublishedKeys.</summary>
    private async Task CheckJwksAsync()
    {
        _jwksChecks++;
        using var response = await _host.Client.GetAsync("/.well-known/jwks.json");
        var kids = (await JsonAsync(response)).GetProperty("keys").EnumerateArray().Select(k => k.GetProperty("kid").GetString()!).ToHashSet(StringComparer.Ordinal);
        var cap = _host.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<TokenService.Configuration.KeysOptions>>().Value.MaxPublishedKeys;
        _maxJwks = Math.Max(_maxJwks, kids.Count);
        if (kids.Count > cap)
        {
            Fail($"the JWKS publishes {kids.Count} keys, more than Keys:MaxPublishedKeys {cap}");
        }

        foreach (var (kid, key) in _keys)
        {
            if (key.LatestExpiry > Now && !kids.Contains(kid))
            {
                Fail($"the JWKS lacks kid {kid}, whose tokens are valid until {key.LatestExpiry:O}");
            }
        }
    }

    /// <summary>
    /// Follows the served key set (after each rotation check and the operator's rotation, and at every token issued):
    /// active-key changes, and each key's retirement once it is known.
    /// </summary>
    private async Task ObserveKeysAsync() =>
        ObserveKeys(await _host.Services.GetRequiredService<ISigningKeyService>().GetKeySetAsync(CancellationToken.None));

    private void ObserveKeys(SigningKeySet set)
    {
        if (set.Active is { } active && active.Kid != _activeKid)
        {
            if (_activeKid is not null)
            {
                _activeKeyChanges++;
            }

            _activeKid = active.Kid;
        }

        foreach (var key in set.Published.Where(k => k.State == SigningKeyState.Retired && k.RetiresAt is not null))
        {
            var record = Key(key.Kid);
            if (record.RetiresAt is null)
            {
                record.RetiresAt = key.RetiresAt;
                if (record.LatestIssuedAt > key.RetiresAt)
                {
                    Fail($"kid {key.Kid} signed a token at {record.LatestIssuedAt:O}, after its retirement at {key.RetiresAt:O}");
                }
            }
        }
    }

    // ---- every day --------------------------------------------------------------------------------------

    private async Task DailyAsync()
    {
        At(Now + TimeSpan.FromDays(1), DailyAsync);
        TurnOver();
        CheckStorage();
        await CheckJwksAsync();
        await CheckKeyExpiriesAsync();
        if (_vault.Count("policy-denied") > 0 || _vault.Count("sign-outside-validity") > 0)
        {
            Fail($"the vault refused {_vault.Count("policy-denied")} key creations by policy and {_vault.Count("sign-outside-validity")} signatures with an expired key");
        }
    }

    /// <summary>Every day some users leave (they sign in no more) and as many new ones join: a steady active population.</summary>
    private void TurnOver()
    {
        _users.RemoveAll(u => u.Leaving && u.Session is null);
        foreach (var leaving in _users.Where(u => !u.Leaving && !u.Marathon).OrderBy(_ => _random.Next()).Take(DailyTurnover).ToList())
        {
            leaving.Leaving = true;
        }

        var active = _users.Count(u => !u.Leaving);
        for (var i = active; i < Population; i++)
        {
            _users.Add(new User("user-" + _nextUser++.ToString("D4", CultureInfo.InvariantCulture), Marathon: false));
        }
    }

    /// <summary>
    /// Storage stays bounded by the active population, not by time: sessions and user partitions by the users who can
    /// hold one (each at most Keys:MaxSessionsPerUser), markers by what happened within their own lifetimes (plus the
    /// cleanup interval).
    /// </summary>
    private void CheckStorage()
    {
        var options = _host.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<TokenService.Configuration.TokenServiceOptions>>().Value;
        var events = _host.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<TokenService.Configuration.EventsOptions>>().Value;
        var cleanupInterval = TimeSpan.FromHours(1);
        while (_recent.TryPeek(out var oldest) && oldest.At < Now - events.DeduplicationWindow - cleanupInterval - TimeSpan.FromDays(1))
        {
            _recent.Dequeue();
        }

        int Within(string kind, TimeSpan window) => _recent.Count(r => r.Kind == kind && r.At > Now - window - cleanupInterval);

        // Users who can hold a session now: the population, those leaving, and anyone signed in within the idle timeout.
        var holders = _users.Count + Within("sign-in", options.SessionIdleTimeout);
        var sessions = (InMemorySessionStore)DiagnosticsServiceCollectionExtensions.Undecorated(_host.Services.GetRequiredService<ISessionStore>());
        var denied = (InMemoryAccessTokenDenyList)_host.Services.GetRequiredService<IAccessTokenDenyList>();
        var idTokens = (InMemoryIdTokenReplayCache)_host.Services.GetRequiredService<IIdTokenReplayCache>();
        var processed = (InMemoryProcessedEventStore)_host.Services.GetRequiredService<IProcessedEventStore>();
        var dpop = (InMemoryDpopReplayCache)_host.Services.GetRequiredService<IDpopReplayCache>();

        Bounded("session records", sessions.Count, holders * options.MaxSessionsPerUser, ref _maxSessions);
        Bounded("session partitions (one per user)", sessions.PartitionCount, holders, ref _maxPartitions);
        Bounded("deny-list entries", denied.Count, Within("deny", options.AccessTokenLifetime), ref _maxDenied);
        // Redemptions live in the sessions' partitions (and, for a session lifetime in a store of an earlier version, in the
        // replay cache too); either way no longer than the ID token's exp plus the skew.
        Bounded("ID-token redemptions", sessions.RedemptionCount + idTokens.Count, Within("sign-in", TimeSpan.FromMinutes(5) + options.ClockSkew), ref _maxIdTokenMarkers);
        Bounded("processed IdP events", processed.Count, Within("event", events.DeduplicationWindow), ref _maxProcessedEvents);
        var none = 0;
        Bounded("DPoP replay entries", dpop.Count, 0, ref none); // no DPoP client in this population
    }

    private void Bounded(string what, int count, int bound, ref int max)
    {
        max = Math.Max(max, count);
        if (count > bound)
        {
            Fail($"{count} {what} held, more than the active population bounds ({bound})");
        }
    }

    /// <summary>Every key's Key Vault expiry outlives the tokens it signed (key expiry under the Deny policy).</summary>
    private async Task CheckKeyExpiriesAsync()
    {
        var versions = await InTestVaults.Client(_vault.VaultUri).ListVersionsAsync("token-signing");
        var expiries = versions.ToDictionary(v => v.Kid(), v => v.ExpiresOn, StringComparer.Ordinal);
        foreach (var (kid, key) in _keys.Where(k => k.Value.ProviderKeyId is not null && k.Value.LatestExpiry > Now - TimeSpan.FromDays(1)))
        {
            if (!expiries.TryGetValue(key.ProviderKeyId!, out var expires) || expires is null || expires < key.LatestExpiry)
            {
                Fail($"kid {kid} (vault key {key.ProviderKeyId}) expires {expires:O}, before its last token {key.LatestExpiry:O}");
            }
        }
    }

    private int StoredRecords()
    {
        var sessions = (InMemorySessionStore)DiagnosticsServiceCollectionExtensions.Undecorated(_host.Services.GetRequiredService<ISessionStore>());
        return sessions.Count
            + sessions.RedemptionCount
            + ((InMemoryAccessTokenDenyList)_host.Services.GetRequiredService<IAccessTokenDenyList>()).Count
            + ((InMemoryIdTokenReplayCache)_host.Services.GetRequiredService<IIdTokenReplayCache>()).Count
            + ((InMemoryProcessedEventStore)_host.Services.GetRequiredService<IProcessedEventStore>()).Count;
    }

    // ---- results ----------------------------------------------------------------------------------------

    private async Task ExpectAsync(HttpResponseMessage response, HttpStatusCode status, string what)
    {
        if (response.StatusCode != status)
        {
            Fail($"{what} got {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        }
    }

    private void Fail(string what) => Assert.Fail($"Day {Day} ({Now:yyyy-MM-dd HH:mm:ss}Z): {what}");

    public IEnumerable<string> Report(TimeSpan elapsed)
    {
        yield return $"400 simulated days in {elapsed.TotalSeconds:F1} s of wall-clock time, ending {Now:O}";
        yield return $"tokens: {_signIns} sign-ins, {_refreshes} refreshes, {_refreshesRefusedAtLifetime} refreshes refused at a family's end ({_absoluteEnds} at its absolute lifetime), {_signOuts} sign-outs, {_accessTokensRevoked} access tokens revoked";
        yield return $"resource server: {_validations} validations, all accepted; JWKS checked {_jwksChecks} times, at most {_maxJwks} keys";
        yield return $"keys: {_vault.CreatedKeys.Count} created in the vault, {_activeKeyChanges} active-key changes (immediate rotation {_immediateRotation ?? "none"}); "
            + $"vault: {_vault.Count("sign")} signs, {_vault.Count("throttled")} throttled, {_vault.Count("policy-denied")} denied by policy, {_vault.Count("sign-outside-validity")} refused as expired";
        yield return $"graph: {_graph.Created} subscriptions created, {_graph.Renewals} renewals, {_graph.BadRequests} refused, {_graph.Live.Count} live at the end";
        yield return $"IdP events: {_events} delivered, {_redeliveries} redelivered; timers: {_timerRuns} runs; purged {_purged} records";
        yield return $"storage maxima: {_maxSessions} sessions, {_maxPartitions} partitions, {_maxDenied} deny-list entries, {_maxIdTokenMarkers} ID-token markers, {_maxProcessedEvents} processed events; {_nextUser} users over the year";
    }

    public void AssertExercised()
    {
        Assert.True(_activeKeyChanges >= 5, $"{_activeKeyChanges} active-key changes: four scheduled rotations and the immediate one were expected");
        Assert.NotNull(_immediateRotation);
        Assert.True(_graph.Renewals >= 12, $"{_graph.Renewals} Graph renewals in 400 days");
        Assert.True(_absoluteEnds >= 20, $"{_absoluteEnds} refresh families met their absolute lifetime");
        Assert.True(_purged > 0 && _events > 0 && _redeliveries > 0 && _accessTokensRevoked > 0);
        Assert.Equal(0, _graph.BadRequests);
    }

    public async ValueTask DisposeAsync()
    {
        await _api.DisposeAsync();
        await _host.DisposeAsync();
        await _vault.DisposeAsync();
        _graph.Dispose();
    }
}

/// <summary>A timer function and its NCRONTAB schedule (six fields, with seconds), as its TimerTrigger attribute says.</summary>
internal sealed record TimerSchedule(string Name, MethodInfo Method, string Schedule, bool RunOnStartup)
{
    public static IReadOnlyList<TimerSchedule> Of(Type functions) =>
    [
        .. functions.GetMethods(BindingFlags.Public | BindingFlags.Instance)
            .Select(m => (Method: m, Function: m.GetCustomAttribute<FunctionAttribute>(),
                Trigger: m.GetParameters().Select(p => p.GetCustomAttribute<TimerTriggerAttribute>()).FirstOrDefault(a => a is not null)))
            .Where(x => x.Function is not null && x.Trigger is not null)
            .Select(x => new TimerSchedule(x.Function!.Name, x.Method, x.Trigger!.Schedule, x.Trigger.RunOnStartup)),
    ];

    /// <summary>
    /// The first occurrence after <paramref name="after"/>. Supports what the app's schedules use: each of second, minute
    /// and hour a number or <c>*</c>, day, month and day of week <c>*</c>; anything else fails, so that a new schedule
    /// cannot be silently misread.
    /// </summary>
    public DateTimeOffset NextAfter(DateTimeOffset after)
    {
        var fields = Schedule.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(fields.Length == 6 && fields[3..].All(f => f == "*"), $"{Name}: schedule '{Schedule}' is beyond this simulation's NCRONTAB reader");
        int? Field(string f) => f == "*" ? null : int.Parse(f, NumberStyles.None, CultureInfo.InvariantCulture);
        var (second, minute, hour) = (Field(fields[0]), Field(fields[1]), Field(fields[2]));
        Assert.True(second is not null, $"{Name}: a timer every second");
        var start = new DateTimeOffset(after.Year, after.Month, after.Day, after.Hour, after.Minute, 0, TimeSpan.Zero);
        for (var t = start.AddSeconds(second!.Value); ; t = t.AddMinutes(1))
        {
            if (t > after && (minute is null || t.Minute == minute) && (hour is null || t.Hour == hour))
            {
                return t;
            }
        }
    }
}
