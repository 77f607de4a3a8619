using System.Collections.Concurrent;
using System.Net;
using System.Text;
using FsCheck;
using FsCheck.Fluent;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using TokenService.Tests.Infrastructure;
using TokenService.Tokens;
using TokenService.Jwt;
using static TokenService.Tests.Hardening.Crafted;
using static TokenService.Tests.Infrastructure.TokenServiceTestHost;

namespace TokenService.Tests.Hardening;

/// <summary>
/// No 5xx on crafted input (docs/api.md, "Errors": every bad input is an OAuth error or problem details). JOSE headers and claims, refresh tokens and event deliveries holding
/// lone surrogate escapes, invalid UTF-8, wrong JSON kinds, huge numbers, duplicate or escaped names and deep nesting
/// are refused with the route's documented error shape (RFC 6749 §5.2 JSON, RFC 6750 challenges, RFC 7009/7662
/// answers, problem details, RFC 8935 errors), on both hosts and in the resource-server library, and change nothing.
/// </summary>
public sealed class CraftedInputTests(CraftedInputFixture fixture) : IClassFixture<CraftedInputFixture>
{
    public static TheoryData<HostKind> Hosts => new() { HostKind.Standalone, HostKind.Functions };

    [Theory]
    [MemberData(nameof(Hosts))]
    public async Task The_issue_reproduction_is_a_401_and_not_a_500(HostKind kind)
    {
        // header {"alg":"RS256","kid":"\ud800","typ":"at+jwt"}, token $H.e30.AAAA
        var token = Base64UrlEncoding.Encode(Encoding.ASCII.GetBytes("""{"alg":"RS256","kid":"\ud800","typ":"at+jwt"}""")) + ".e30.AAAA";
        using var response = await fixture[kind].SessionsAsync(token);
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
    }

    [Theory]
    [MemberData(nameof(Hosts))]
    public async Task Crafted_jose_headers_are_refused_on_every_route_that_reads_a_token(HostKind kind)
    {
        var target = fixture[kind];
        var kid = await ServiceKidAsync(target.Host);
        var failures = new List<string?>();
        foreach (var header in Headers(kid))
        {
            var token = Unsigned(header);
            var label = kind + " " + GeneratedToken.Readable(header);
            failures.Add(await CheckAccessTokenRoutesAsync(target, token, label));
            using (var exchange = await target.ExchangeWebAsync(token))
            {
                failures.Add(await Expect.OAuthErrorAsync(exchange, label + " exchange(web)", HttpStatusCode.BadRequest, "invalid_request"));
            }

            using (var spa = await target.ExchangeSpaAsync(token))
            {
                failures.Add(await Expect.OAuthErrorAsync(spa, label + " exchange(spa)", HttpStatusCode.BadRequest, "invalid_request"));
            }

            using (var ssf = await target.SsfPushAsync(token))
            {
                failures.Add(await Expect.SetErrorAsync(ssf, label + " ssf"));
            }
        }

        AssertNone(failures);
        await target.AssertBystanderUntouchedAsync();
    }

    [Theory]
    [MemberData(nameof(Hosts))]
    public async Task Crafted_dpop_proof_keys_and_crit_headers_are_invalid_dpop_proof_and_never_a_5xx(HostKind kind)
    {
        var target = fixture[kind];
        var now = target.Host.Services.GetRequiredService<TimeProvider>().GetUtcNow();
        var uri = Issuer + "/oauth2/token";
        using var weak = TokenService.Tests.Dpop.DpopKey.Rsa("RS256", 1024);
        using var rsa = TokenService.Tests.Dpop.DpopKey.Rsa("RS256", 2048);
        using var ec = TokenService.Tests.Dpop.DpopKey.Es256();
        var proofs = new List<string>();
        foreach (var padTo in new[] { 256, 257, 384, 512, 1024 })
        {
            proofs.Add(weak.HandSignedProof("POST", uri, now, jwk: weak.ZeroPaddedRsaJwk(padTo)));
        }

        proofs.Add(rsa.HandSignedProof("POST", uri, now, jwk: rsa.ZeroPaddedRsaJwk(257)));
        proofs.Add(rsa.HandSignedProof("POST", uri, now, jwk: rsa.ZeroPaddedRsaJwk(0, eBytes: 8)));
        proofs.Add(TokenService.Tests.Dpop.DpopKey.ExponentOneProof("POST", uri, now));
        foreach (var crit in new System.Text.Json.Nodes.JsonNode?[] { new System.Text.Json.Nodes.JsonArray("b64"), new System.Text.Json.Nodes.JsonArray(), "exp", 1, null, new System.Text.Json.Nodes.JsonObject() })
        {
            proofs.Add(ec.HandSignedProof("POST", uri, now, header: h => h["crit"] = crit?.DeepClone()));
            proofs.Add(rsa.HandSignedProof("POST", uri, now, header: h => h["crit"] = crit?.DeepClone()));
        }

        foreach (var proof in proofs)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/oauth2/token")
            {
                Content = new FormUrlEncodedContent(
                [
                    new("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
                    new("subject_token", target.Host.Idp.IdToken("crafted-dpop")),
                    new("subject_token_type", "urn:ietf:params:oauth:token-type:id_token"),
                ]),
            };
            request.Headers.Authorization = Basic("web", WebSecret);
            request.Headers.TryAddWithoutValidation("DPoP", proof);
            using var response = await target.Host.Client.SendAsync(request);
            var body = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.BadRequest && body.Contains("invalid_dpop_proof", StringComparison.Ordinal), $"{(int)response.StatusCode} {body} for {proof}");
        }
    }

    [Theory]
    [MemberData(nameof(Hosts))]
    public async Task Validly_signed_access_tokens_with_crafted_claims_are_refused(HostKind kind)
    {
        // Signed with the service's own key, so that the claims reader is reached (it runs after the signature check).
        var target = fixture[kind];
        var failures = new List<string?>();
        foreach (var member in ClaimMembers())
        {
            foreach (var duplicate in (bool[])[false, true])
            {
                var claims = Claims(AccessTokenClaims(), member, duplicate);
                var token = await SignByServiceAsync(target.Host, claims);
                failures.Add(await CheckAccessTokenRoutesAsync(target, token, GeneratedToken.Readable($"{kind} {claims}")));
            }
        }

        AssertNone(failures);
        await target.AssertBystanderUntouchedAsync();
    }

    [Theory]
    [MemberData(nameof(Hosts))]
    public async Task Validly_signed_id_tokens_with_crafted_claims_are_refused_by_token_exchange(HostKind kind)
    {
        var target = fixture[kind];
        var failures = new List<string?>();
        foreach (var member in ClaimMembers().Concat(RefusedUserIdMembers()))
        {
            foreach (var duplicate in (bool[])[false, true])
            {
                var claims = Claims(IdTokenClaims("crafted-" + Guid.NewGuid().ToString("N")), member, duplicate);
                var token = SignByIdp(target.Idp, IdpHeader(target.Idp), claims);
                using (var web = await target.ExchangeWebAsync(token))
                {
                    failures.Add(await Expect.OAuthErrorAsync(web, GeneratedToken.Readable($"{kind} exchange(web) {claims}"), HttpStatusCode.BadRequest, "invalid_request"));
                }

                using var spa = await target.ExchangeSpaAsync(SignByIdp(target.Idp, IdpHeader(target.Idp), Claims(IdTokenClaims("crafted-" + Guid.NewGuid().ToString("N")), member, duplicate)));
                failures.Add(await Expect.OAuthErrorAsync(spa, GeneratedToken.Readable($"{kind} exchange(spa) {claims}"), HttpStatusCode.BadRequest, "invalid_request"));
            }
        }

        // OIDC Core §3.1.3.7 item 4: several audiences (ours among them) and no azp; item 5: an azp that is not the client.
        var audiences = "[" + Str(TestIdp.Audience) + "," + Str("https://graph.example") + "]";
        foreach (var overrides in (List<(string, string)>[])[[("aud", audiences)], [("aud", audiences), ("azp", Str("another-app"))], [("azp", "1")]])
        {
            foreach (var spaClient in (bool[])[false, true])
            {
                var claims = Claims(IdTokenClaims("crafted-" + Guid.NewGuid().ToString("N")), overrides);
                var token = SignByIdp(target.Idp, IdpHeader(target.Idp), claims);
                using var response = spaClient ? await target.ExchangeSpaAsync(token) : await target.ExchangeWebAsync(token);
                failures.Add(await Expect.OAuthErrorAsync(response, GeneratedToken.Readable($"{kind} exchange({(spaClient ? "spa" : "web")}) {claims}"), HttpStatusCode.BadRequest, "invalid_request"));
            }
        }

        AssertNone(failures);
        await target.AssertBystanderUntouchedAsync();
    }

    [Theory]
    [MemberData(nameof(Hosts))]
    public async Task Garbage_refresh_tokens_are_invalid_grant(HostKind kind)
    {
        var target = fixture[kind];
        var failures = new List<string?>();
        string[] garbage =
        [
            "%ED%A0%80", "%FF", "%C3%28", "x%ED%A0%80y", new string('A', 79) + "%FF", string.Concat(Enumerable.Repeat("%C3%A9", 80)), new string('!', 80), new string('A', 81),
            Uri.EscapeDataString(Unsigned("""{"alg":"RS256","kid":"\ud800","typ":"at+jwt"}""")), "%5Cud800", "null", "%7B%7D", new string('A', 80),
        ];
        foreach (var value in garbage)
        {
            var body = Encoding.ASCII.GetBytes("grant_type=refresh_token&refresh_token=" + value);
            using (var web = await target.PostBytesAsync("/oauth2/token", body, "application/x-www-form-urlencoded", auth: Basic("web", WebSecret)))
            {
                failures.Add(await Expect.OAuthErrorAsync(web, $"{kind} refresh(web) {value}", HttpStatusCode.BadRequest, "invalid_grant"));
            }

            // A spa's refresh token travels only in its cookie.
            using var spa = await target.PostBytesAsync("/oauth2/token", Encoding.ASCII.GetBytes("grant_type=refresh_token&client_id=spa"), "application/x-www-form-urlencoded",
                origin: SpaOrigin, cookie: "__Host-refresh_token=" + value);
            failures.Add(await Expect.OAuthErrorAsync(spa, $"{kind} refresh(spa) {value}", HttpStatusCode.BadRequest, "invalid_grant"));

            using var revoke = await target.PostBytesAsync("/oauth2/revoke", Encoding.ASCII.GetBytes("token=" + value), "application/x-www-form-urlencoded", auth: Basic("web", WebSecret));
            failures.Add(Expect.Revoked(revoke, $"{kind} revoke {value}"));
        }

        AssertNone(failures);
        await target.AssertBystanderUntouchedAsync();
    }

    /// <summary>Event Grid and CloudEvents deliveries, each of which would end the bystander's sessions if any of it were processed.</summary>
    [Theory]
    [MemberData(nameof(Hosts))]
    public async Task Non_canonical_base64url_segments_are_refused_and_not_a_500(HostKind kind)
    {
        // "e30" is {}; "e31" decodes to the same byte with non-zero spare bits (RFC 4648 §3.5), which .NET's
        // Base64Url.TryDecodeFromChars answers with a FormatException. "AB" is "AA" with a spare bit set.
        var target = fixture[kind];
        var kid = await ServiceKidAsync(target.Host);
        var header = B64($$"""{"alg":"RS256","kid":"{{kid}}","typ":"at+jwt"}""");
        var failures = new List<string?>();
        foreach (var token in (string[])["e31.e30.AA", "e30.e31.AA", header + ".e31.AAAA", header + ".e30.AB", header + ".e30.AAB"])
        {
            var label = kind + " " + token;
            failures.Add(await CheckAccessTokenRoutesAsync(target, token, label));
            using var exchange = await target.ExchangeWebAsync(token);
            failures.Add(await Expect.OAuthErrorAsync(exchange, label + " exchange(web)", HttpStatusCode.BadRequest, "invalid_request"));
        }

        AssertNone(failures);
        await target.AssertBystanderUntouchedAsync();
    }

    [Theory]
    [MemberData(nameof(Hosts))]
    public async Task Event_times_in_the_last_seconds_of_year_9999_end_sessions_without_overflowing(HostKind kind)
    {
        // The event-time skew added to 9999-12-31T23:59:59Z is beyond DateTimeOffset.MaxValue; each source of the time.
        var target = fixture[kind];
        var user = "far-future-" + kind;
        var login = await target.Host.LoginAsync(user);
        var body = "[" + string.Join(",",
            $$$"""{"id":"{{{Guid.NewGuid()}}}","eventType":"TokenService.Idp.AccountDisabled","subject":"s","eventTime":"9999-12-31T23:59:59Z","dataVersion":"1","data":{"userId":"{{{user}}}"}}""",
            $$$"""{"id":"{{{Guid.NewGuid()}}}","eventType":"TokenService.Idp.PasswordReset","subject":"s","eventTime":"2030-01-01T00:00:00Z","dataVersion":"1","data":{"userId":"{{{user}}}","occurredAt":"9999-12-31T23:59:59.9999999Z"}}""") + "]";
        using (var response = await target.DeliverAsync(Bytes(body)))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        Assert.False(await target.Host.IsActiveAsync(login.AccessToken));
        var cloud = $$$"""{"specversion":"1.0","id":"{{{Guid.NewGuid()}}}","source":"idp","type":"TokenService.Idp.AccountDeleted","time":"9999-12-31T23:59:59Z","data":{"userId":"{{{user}}}"}}""";
        using (var response = await target.DeliverAsync(Bytes(cloud), "application/cloudevents+json"))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        await target.AssertBystanderUntouchedAsync();
    }

    [Theory]
    [MemberData(nameof(Hosts))]
    public async Task A_webhook_request_origin_that_is_not_one_dns_name_is_a_400_not_a_500(HostKind kind)
    {
        var target = fixture[kind];
        foreach (var origin in (string[])["a\u0001b", "a\u007fb", "a b", new string('a', 300)])
        {
            using var request = new HttpRequestMessage(HttpMethod.Options, "/events/idp?key=" + Uri.EscapeDataString(WebhookSecret));
            Assert.True(request.Headers.TryAddWithoutValidation("WebHook-Request-Origin", origin));
            using var response = await target.Host.Client.SendAsync(request);
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            Assert.False(response.Headers.Contains("WebHook-Allowed-Origin"));
        }

        using var two = new HttpRequestMessage(HttpMethod.Options, "/events/idp?key=" + Uri.EscapeDataString(WebhookSecret));
        two.Headers.TryAddWithoutValidation("WebHook-Request-Origin", ["eventgrid.azure.net", "evil.example"]);
        using var refused = await target.Host.Client.SendAsync(two);
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
    }

    public static IEnumerable<(string Body, string ContentType)> CraftedDeliveries()
    {
        var ends = $$$"""{"id":"{{{Guid.NewGuid()}}}","eventType":"TokenService.Idp.AccountDisabled","eventTime":"2030-01-01T00:00:00Z","dataVersion":"1","data":{"userId":"{{{Bystander}}}"}}""";
        var endsCloud = $$$"""{"specversion":"1.0","id":"{{{Guid.NewGuid()}}}","source":"idp","type":"TokenService.Idp.AccountDisabled","time":"2030-01-01T00:00:00Z","data":{"userId":"{{{Bystander}}}"}}""";
        string[] bad = ["\"\\ud800\"", "\"\\udfff\"", "\"a\\ud800\"", BadUtf8, "\"\u0002\"", "1", "1e400", "99999999999999999999999", "null", "[]", "{}", "true", Deep(200)];

        foreach (var value in bad)
        {
            // Event Grid schema: a bad id, eventType, eventTime, topic, data.userId, or a bad member name anywhere.
            // (A null eventTime is an absent one, allowed by the Event Grid schema.)
            foreach (var e in ((string[])
            [
                $$$"""{"id":{{{value}}},"eventType":"TokenService.Idp.AccountDisabled","eventTime":"2030-01-01T00:00:00Z","data":{"userId":"{{{Bystander}}}"}}""",
                $$$"""{"id":"a","eventType":{{{value}}},"eventTime":"2030-01-01T00:00:00Z","data":{"userId":"{{{Bystander}}}"}}""",
                $$$"""{"id":"a","eventType":"TokenService.Idp.AccountDisabled","eventTime":{{{value}}},"data":{"userId":"{{{Bystander}}}"}}""",
                $$$"""{"id":"a","eventType":"TokenService.Idp.AccountDeleted","data":{"userId":{{{value}}}}}""",
                $$$"""{"id":"a","eventType":"TokenService.Idp.AccountDeleted","data":{"userId":"u","userId":{{{value}}}}}""",
                $$$$"""{"id":"a","eventType":"Microsoft.Graph.UserDeleted","data":{"resourceData":{"id":{{{{value}}}}}}}""",
                $$$$"""{"id":"a","eventType":"auth0.logs.sdu","data":{"data":{"type":"sdu","user_id":{{{{value}}}}}}}""",
            ]).Where(e => value != "null" || !e.Contains("\"eventTime\":null", StringComparison.Ordinal)))
            {
                yield return ("[" + ends + "," + e + "]", "application/json");
            }

            // CloudEvents 1.0: a bad id, source, type, specversion or data.userId.
            foreach (var e in (string[])
            [
                $$$"""{"specversion":"1.0","id":{{{value}}},"source":"idp","type":"TokenService.Idp.AccountDisabled","data":{"userId":"{{{Bystander}}}"}}""",
                $$$"""{"specversion":"1.0","id":"a","source":{{{value}}},"type":"TokenService.Idp.AccountDisabled","data":{"userId":"{{{Bystander}}}"}}""",
                $$$"""{"specversion":"1.0","id":"a","source":"idp","type":{{{value}}},"data":{"userId":"{{{Bystander}}}"}}""",
                $$$"""{"specversion":{{{value}}},"id":"a","source":"idp","type":"TokenService.Idp.AccountDisabled","data":{"userId":"{{{Bystander}}}"}}""",
                $$$"""{"specversion":"1.0","id":"a","source":"idp","type":"TokenService.Idp.AccountDisabled","data":{"userId":{{{value}}}}}""",
                $$$"""{"specversion":"1.0","id":"a","source":"idp","type":"TokenService.Idp.SecurityEvent","datacontenttype":"application/secevent+jwt","data":{{{value}}}}""",
            ])
            {
                yield return ("[" + endsCloud + "," + e + "]", "application/cloudevents-batch+json");
            }

            // Subscription validation: the code must be a string of text.
            yield return ($$$"""[{"id":"v","eventType":"Microsoft.EventGrid.SubscriptionValidationEvent","data":{"validationCode":{{{value}}}}}]""", "application/json");
        }

        // Member names the lookups cannot unescape, next to the members they look up.
        yield return ("[" + ends + """,{"\ud800abc":1,"id":"a","eventType":"TokenService.Idp.AccountDisabled","data":{"userId":"u"}}]""", "application/json");
        yield return ("[" + ends + """,{"id":"a","eventType":"TokenService.Idp.AccountDisabled","data":{"\udfffuserId":"x","userId":"u"}}]""", "application/json");
        yield return ("""{"specversion":"1.0","\ud800":"x","id":"a","source":"idp","type":"TokenService.Idp.AccountDisabled","data":{"userId":"u"}}""", "application/cloudevents+json");
        // data_base64 whose JSON holds a lone surrogate or invalid UTF-8.
        foreach (var inner in (string[])["""{"userId":"\ud800"}""", "{\"userId\":" + BadUtf8 + "}", """{"userId":1}"""])
        {
            yield return ("[" + endsCloud + "," + $$"""{"specversion":"1.0","id":"b","source":"idp","type":"TokenService.Idp.AccountDisabled","data_base64":"{{Convert.ToBase64String(Bytes(inner))}}"}""" + "]",
                "application/cloudevents-batch+json");
        }

        yield return ("[" + ends + "," + Deep(200) + "]", "application/json");
        yield return ("[" + ends + "]" + "\u0001", "application/json");
    }

    [Theory]
    [MemberData(nameof(Hosts))]
    public async Task Crafted_event_deliveries_are_refused_whole_with_problem_details(HostKind kind)
    {
        var target = fixture[kind];
        var failures = new List<string?>();
        foreach (var (body, contentType) in CraftedDeliveries())
        {
            using var response = await target.DeliverAsync(Bytes(body), contentType);
            failures.Add(await Expect.ProblemAsync(response, $"{kind} {contentType} {GeneratedToken.Readable(body)}", HttpStatusCode.BadRequest));
        }

        AssertNone(failures);
        await target.AssertBystanderUntouchedAsync();
    }

    [Theory]
    [MemberData(nameof(Hosts))]
    public async Task Verified_sets_with_crafted_subjects_or_events_are_refused(HostKind kind)
    {
        var target = fixture[kind];
        var revoked = "\"https://schemas.openid.net/secevent/caep/event-type/session-revoked\"";
        var events = "{" + revoked + ":{}}";
        var failures = new List<string?>();
        var cases = new List<(string SubId, string Events)>();
        foreach (var format in (string[])["1", "[\"iss_sub\"]", "{}", "null", "true", "1e400", "\"\\ud800\"", BadUtf8])
        {
            cases.Add(($$"""{"format":{{format}},"iss":"{{TestIdp.Issuer}}","sub":"{{Bystander}}"}""", events));
            cases.Add(($$"""{"subject_type":{{format}},"sub":"{{Bystander}}"}""", events));
        }

        foreach (var value in (string[])["1", "null", "[]", "{}", "\"\\udfff\"", BadUtf8])
        {
            cases.Add(($$$"""{"format":"iss_sub","iss":"{{{TestIdp.Issuer}}}","sub":{{{value}}}}""", events));
            cases.Add(($$$"""{"format":"opaque","id":{{{value}}}}""", events));
        }

        var subject = $$"""{"format":"iss_sub","iss":"{{TestIdp.Issuer}}","sub":"{{Bystander}}"}""";
        cases.Add(("1", events));
        cases.Add((subject, """{"\ud800":{}}"""));
        cases.Add((subject, "{" + revoked + """:{"subject":{"format":1},"\udfff":1}}"""));
        cases.Add((subject, "{" + revoked + ":{\"reason_admin\":" + BadUtf8 + "}}"));
        cases.Add((subject, "[" + revoked + "]"));

        foreach (var (subId, eventsJson) in cases)
        {
            var set = SignByIdp(target.Idp, IdpHeader(target.Idp, "secevent+jwt"), Claims(SetClaims(subId, eventsJson), crafted: null));
            var label = GeneratedToken.Readable($"{kind} sub_id={subId} events={eventsJson}");
            using (var push = await target.SsfPushAsync(set))
            {
                failures.Add(await Expect.SetErrorAsync(push, label, "invalid_request"));
            }

            // The same SET inside a CloudEvent on the webhook: a malformed delivery, 400 problem details.
            var cloudEvent = $$"""{"specversion":"1.0","id":"{{Guid.NewGuid()}}","source":"https://ssf.idp.example","type":"TokenService.Idp.SecurityEvent","datacontenttype":"application/secevent+jwt","data":"{{set}}"}""";
            using var delivered = await target.DeliverAsync(Encoding.ASCII.GetBytes(cloudEvent), "application/cloudevents+json");
            failures.Add(await Expect.ProblemAsync(delivered, label + " (cloudevent)", HttpStatusCode.BadRequest));
        }

        // RFC 8417 §2.2 allows exp in a SET; one that has passed (RFC 7519 §4.1.4) is refused, pushed or inside an event.
        var expiredClaims = Claims(SetClaims(subject, events), [("exp", (DateTimeOffset.UtcNow.ToUnixTimeSeconds() - 3600).ToString(System.Globalization.CultureInfo.InvariantCulture))]);
        var expired = SignByIdp(target.Idp, IdpHeader(target.Idp, "secevent+jwt"), expiredClaims);
        using (var push = await target.SsfPushAsync(expired))
        {
            failures.Add(await Expect.SetErrorAsync(push, $"{kind} expired SET {expiredClaims}", "invalid_request"));
        }

        var expiredEvent = $$"""{"specversion":"1.0","id":"{{Guid.NewGuid()}}","source":"https://ssf.idp.example","type":"TokenService.Idp.SecurityEvent","datacontenttype":"application/secevent+jwt","data":"{{expired}}"}""";
        using (var delivered = await target.DeliverAsync(Encoding.ASCII.GetBytes(expiredEvent), "application/cloudevents+json"))
        {
            failures.Add(await Expect.ProblemAsync(delivered, $"{kind} expired SET (cloudevent)", HttpStatusCode.BadRequest));
        }

        // An event_timestamp beyond DateTimeOffset's range is ignored (iat stands), not thrown: the SET is accepted.
        var far = SignByIdp(target.Idp, IdpHeader(target.Idp, "secevent+jwt"), Claims(SetClaims(
            $$"""{"format":"opaque","id":"nobody-{{Guid.NewGuid():N}}"}""", "{" + revoked + ":{\"event_timestamp\":99999999999999}}"), crafted: null));
        using (var accepted = await target.SsfPushAsync(far))
        {
            Assert.Equal(HttpStatusCode.Accepted, accepted.StatusCode);
        }

        AssertNone(failures);
        await target.AssertBystanderUntouchedAsync();
    }

    [Theory]
    [MemberData(nameof(Hosts))]
    public async Task The_resource_server_library_answers_401_to_crafted_bearer_tokens(HostKind kind)
    {
        var target = fixture[kind];
        var kid = await ServiceKidAsync(target.Host);
        var failures = new List<string?>();
        foreach (var header in Headers(kid))
        {
            using var response = await target.ResourceServerAsync(Unsigned(header));
            failures.Add(Expect.Unauthorized(response, GeneratedToken.Readable($"{kind} resource server {header}")));
        }

        foreach (var member in ClaimMembers())
        {
            var claims = Claims(AccessTokenClaims(), member);
            using var response = await target.ResourceServerAsync(await SignByServiceAsync(target.Host, claims));
            failures.Add(Expect.Unauthorized(response, GeneratedToken.Readable($"{kind} resource server {claims}")));
        }

        AssertNone(failures);
    }

    // ---- property-based (FsCheck 3): random JOSE headers, claims and event bodies never get a 5xx ----------------------

    private const int CasesPerProperty = 100;

    /// <summary>
    /// Runs an FsCheck property over an async check. The check runs on a thread-pool thread, outside xUnit's
    /// synchronization context, because FsCheck calls the property synchronously.
    /// </summary>
    internal static Task CheckAsync<T>(Gen<T> gen, Func<T, Task<bool>> property, int cases = CasesPerProperty) =>
        Task.Run(() => Prop.ForAll(Arb.From(gen), (T input) => property(input).GetAwaiter().GetResult())
            .Check(Config.QuickThrowOnFailure.WithMaxTest(cases)));

    [Theory]
    [MemberData(nameof(Hosts))]
    public async Task Property_random_jose_headers_and_claims_never_get_a_5xx_on_any_route(HostKind kind)
    {
        var target = fixture[kind];
        await CheckAsync(CraftedGen.Token, async t => await SendAsync(target, t) < 500);
        await target.AssertBystanderUntouchedAsync();
    }

    [Theory]
    [MemberData(nameof(Hosts))]
    public async Task Property_random_event_deliveries_never_get_a_5xx(HostKind kind)
    {
        var target = fixture[kind];
        await CheckAsync(CraftedGen.Delivery, async d =>
        {
            using var response = await target.DeliverAsync(Bytes(d.Body), d.ContentType);
            return (int)response.StatusCode < 500;
        });
        await target.AssertBystanderUntouchedAsync();
    }

    /// <summary>
    /// Sends a generated token to its route: unsigned with its generated header and payload, or signed by the issuer
    /// the route trusts (our key, the IdP, the SSF transmitter) over valid claims with generated members, so that the
    /// claims readers, which run after the signature check, see the generated values.
    /// </summary>
    private static async Task<int> SendAsync(CraftedInputTarget target, GeneratedToken t)
    {
        var idp = target.Idp;
        var token = !t.Signed
            ? B64(t.Header) + "." + B64(t.Payload) + ".AAAA"
            : t.Route switch
            {
                1 or 2 => SignByIdp(idp, IdpHeader(idp), Claims(IdTokenClaims("generated-" + Guid.NewGuid().ToString("N")), t.Overrides)),
                5 => SignByIdp(idp, IdpHeader(idp, "secevent+jwt"), Claims(SetClaims(
                    $$"""{"format":"opaque","id":"nobody-{{Guid.NewGuid():N}}"}""", """{"https://schemas.openid.net/secevent/caep/event-type/session-revoked":{}}"""), t.Overrides)),
                _ => await SignByServiceAsync(target.Host, Claims(AccessTokenClaims(), t.Overrides)),
            };
        using var response = t.Route switch
        {
            0 => await target.SessionsAsync(token),
            1 => await target.ExchangeWebAsync(token),
            2 => await target.ExchangeSpaAsync(token),
            3 => await target.RevokeAsync(token),
            4 => await target.IntrospectAsync(token),
            5 => await target.SsfPushAsync(token),
            _ => await target.ResourceServerAsync(token),
        };
        return (int)response.StatusCode;
    }

    /// <summary>Fails with every collected mismatch, one per line.</summary>
    private static void AssertNone(List<string?> failures)
    {
        var found = failures.OfType<string>().ToList();
        Assert.True(found.Count == 0, $"{found.Count} case(s) answered otherwise than documented:\n" + string.Join("\n", found));
    }

    /// <summary>A token that must be refused everywhere an access token is read; null when every route answered as documented.</summary>
    internal static async Task<string?> CheckAccessTokenRoutesAsync(CraftedInputTarget target, string token, string label)
    {
        var failures = new List<string?>();
        using (var sessions = await target.SessionsAsync(token))
        {
            failures.Add(await Expect.ProblemAsync(sessions, label + " GET /sessions", HttpStatusCode.Unauthorized));
            failures.Add(Expect.Unauthorized(sessions, label + " GET /sessions"));
        }

        using (var introspect = await target.IntrospectAsync(token))
        {
            failures.Add(await Expect.InactiveAsync(introspect, label + " introspect"));
        }

        using (var revoke = await target.RevokeAsync(token))
        {
            failures.Add(Expect.Revoked(revoke, label + " revoke"));
        }

        using (var api = await target.ResourceServerAsync(token))
        {
            failures.Add(Expect.Unauthorized(api, label + " resource server"));
        }

        var found = failures.OfType<string>().ToList();
        return found.Count == 0 ? null : string.Join("\n", found);
    }
}

/// <summary>The JOSE readers directly: every crafted header and claims set is a <see cref="JwtValidationResult"/> failure.</summary>
public sealed class CraftedJoseTests : IDisposable
{
    private readonly TestIdp _idp = new();

    public void Dispose() => _idp.Dispose();

    private const KeyResolution CraftedMembersOutcome = KeyResolution.Found;

    private Task<JwtValidationResult> ValidateAsync(string token, JwtValidationOptions? options = null) =>
        new JwtValidator(options ?? new JwtValidationOptions { Issuer = TestIdp.Issuer, Audiences = [TestIdp.Audience] },
            new StaticKeySource(_idp.RsaJwk.WithKid(_idp.RsaKid)), TimeProvider.System).ValidateAsync(token, CancellationToken.None).AsTask();

    [Fact]
    public async Task Crafted_headers_are_failures_and_never_exceptions()
    {
        foreach (var header in Headers(_idp.RsaKid))
        {
            var result = await ValidateAsync(Unsigned(header));
            Assert.False(result.IsValid, header);
            Assert.NotEqual(JwtValidationError.None, result.Error);
        }

        // A lone surrogate in kid or alg is a malformed header (RFC 7515 §4: the values are strings of text).
        Assert.Equal(JwtValidationError.Malformed, (await ValidateAsync(Unsigned("""{"alg":"RS256","kid":"\ud800","typ":"at+jwt"}"""))).Error);
        Assert.Equal(JwtValidationError.Malformed, (await ValidateAsync(Unsigned("""{"alg":"\udfff"}"""))).Error);
        Assert.Equal(JwtValidationError.Malformed, (await ValidateAsync(Unsigned("{\"alg\":\"RS256\",\"typ\":" + BadUtf8 + "}"))).Error);
        // RFC 7515 §5.2 step 3: the header must be UTF-8 throughout, also in parameters we ignore.
        Assert.Equal(JwtValidationError.Malformed, (await ValidateAsync(Unsigned("{\"alg\":\"RS256\",\"x\":" + BadUtf8 + "}"))).Error);
    }

    [Fact]
    public async Task Signed_tokens_with_crafted_claims_are_malformed_including_captured_additional_claims()
    {
        var options = new JwtValidationOptions { Issuer = TestIdp.Issuer, Audiences = [TestIdp.Audience], AdditionalClaims = ["oid"] };
        var members = ClaimMembers().Concat([("oid", "\"\\ud800\""), ("oid", BadUtf8), ("oid", "\"\\udfff\"")]);
        foreach (var member in members)
        {
            foreach (var duplicate in (bool[])[false, true])
            {
                var claims = Claims(IdTokenClaims("alice"), member, duplicate);
                var result = await ValidateAsync(SignByIdp(_idp, IdpHeader(_idp), claims), options);
                Assert.False(result.IsValid, claims);
            }
        }

        // The valid base claims are accepted: the failures above come from the crafted member.
        var valid = await ValidateAsync(SignByIdp(_idp, IdpHeader(_idp), Claims(IdTokenClaims("alice"), ("oid", "\"\\ud83d\\ude00\""))), options);
        Assert.True(valid.IsValid, valid.Description);
        Assert.Equal("\ud83d\ude00", valid.Payload!.GetClaim("oid"));
    }

    [Fact]
    public async Task A_jwks_document_that_is_not_unicode_text_is_a_failed_fetch_and_keys_with_crafted_members_are_skipped()
    {
        // The key source treats such a document as "the key source is unusable" and keeps its cached keys (here: none).
        foreach (var jwks in (string[])["""{"keys":[{"kty":"RSA","n":"\ud800","e":"AQAB"}]}""", """{"\udfff":1,"keys":[]}""", "{\"keys\":[{\"kty\":" + BadUtf8 + "}]}"])
        {
            Assert.Equal(KeyResolution.Unavailable, await ResolveFromFileAsync(Bytes(jwks), "k1"));
        }

        var n = _idp.RsaJwk.N;
        var crafted = Bytes($$$"""{"keys":[{"kty":"RSA","n":1,"e":"AQAB"},{"kty":["RSA"]},{"kty":"RSA","n":"{{{n}}}","e":"AQAB","kid":{}},{"kty":"RSA","n":"{{{n}}}","e":"AQAB","kid":"k1"}]}""");
        Assert.Equal(CraftedMembersOutcome, await ResolveFromFileAsync(crafted, "k1"));
    }

    private static async Task<KeyResolution> ResolveFromFileAsync(byte[] jwks, string kid)
    {
        var path = Path.Combine(Path.GetTempPath(), "crafted-jwks-" + Guid.NewGuid().ToString("N") + ".json");
        await File.WriteAllBytesAsync(path, jwks);
        try
        {
            using var keys = new JwksConfigurationManager(new JwksSource("crafted", null, path, TimeSpan.FromMinutes(1), TimeSpan.FromHours(1)),
                TimeProvider.System, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
            return await keys.ResolveAsync(kid, CancellationToken.None);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public Task Property_the_validator_returns_a_result_for_any_generated_token() =>
        CraftedInputTests.CheckAsync(CraftedGen.Token, async t =>
        {
            var token = t.Signed
                ? SignByIdp(_idp, IdpHeader(_idp), Claims(IdTokenClaims("alice"), t.Overrides))
                : B64(t.Header) + "." + B64(t.Payload) + ".AAAA";
            var options = new JwtValidationOptions { Issuer = TestIdp.Issuer, Audiences = [TestIdp.Audience], AdditionalClaims = ["oid", "x", "nonce"] };
            var result = await ValidateAsync(token, options);
            // Any claim that is not Unicode text makes the token invalid; an exception would fail the property.
            return !result.IsValid || !t.Overrides.Any(o => o.Value.Contains("\\ud800\"", StringComparison.Ordinal) && o.Name is "sub" or "iss");
        }, cases: 300);

    [Fact]
    public Task Property_JsonText_agrees_with_decoding_every_string_of_the_document() =>
        CraftedInputTests.CheckAsync(CraftedGen.Value(3), json => Task.FromResult(JsonText.IsWellFormed(Bytes(json)) == DecodesEverything(Bytes(json))), cases: 500);

    // The reference: parse, then decode every member name and string the way readers do.
    private static bool DecodesEverything(byte[] json)
    {
        try
        {
            using var document = System.Text.Json.JsonDocument.Parse(json);
            Walk(document.RootElement);
            return true;
        }
        catch (Exception ex) when (ex is System.Text.Json.JsonException or InvalidOperationException)
        {
            return false;
        }

        static void Walk(System.Text.Json.JsonElement element)
        {
            switch (element.ValueKind)
            {
                case System.Text.Json.JsonValueKind.Object:
                    foreach (var property in element.EnumerateObject())
                    {
                        _ = property.Name;
                        Walk(property.Value);
                    }

                    break;
                case System.Text.Json.JsonValueKind.Array:
                    foreach (var item in element.EnumerateArray())
                    {
                        Walk(item);
                    }

                    break;
                case System.Text.Json.JsonValueKind.String:
                    _ = element.GetString();
                    break;
            }
        }
    }

    [Theory]
    [InlineData("""{"a":"\ud800"}""", false)]
    [InlineData("""{"a":"\udfff"}""", false)]
    [InlineData("""{"a":"\ud800\u0041"}""", false)]
    [InlineData("""{"\ud800":1}""", false)]
    [InlineData("""{"a":["\ud800"]}""", false)]
    [InlineData("\"\u0001\"", false)]
    [InlineData("{\"\u0002\":1}", false)]
    [InlineData("[1] [2]", false)]
    [InlineData("", false)]
    [InlineData("""{"a":"\ud83d\ude00","b":"\u00e9","c":"é","d":[1e400,99999999999999999999999]}""", true)]
    [InlineData("""{"a":1,"a":2}""", true)]
    public void JsonText_accepts_only_unicode_json_text(string json, bool wellFormed) =>
        Assert.Equal(wellFormed, JsonText.IsWellFormed(Bytes(json)));

    [Fact]
    public void JsonText_reads_and_looks_up_without_throwing()
    {
        using var document = System.Text.Json.JsonDocument.Parse(Bytes("""{"n":1,"s":"\udfff","ok":"fine","\ud800x":1}"""));
        var root = document.RootElement;
        // The lookup searches from the last member and must unescape "\ud800x" to compare it.
        Assert.Throws<InvalidOperationException>(() => root.TryGetProperty("ok", out _));
        Assert.False(JsonText.TryGetProperty(root, "ok", out _));
        Assert.Null(JsonText.GetStringOrNull(root, "n"));
        Assert.False(JsonText.IsWellFormed(root));
        Assert.False(JsonText.TryGetString(root, out _));

        using var ok = System.Text.Json.JsonDocument.Parse("""{"n":1,"s":"\udfff","ok":"fine"}""");
        Assert.Null(JsonText.GetStringOrNull(ok.RootElement, "n"));
        Assert.Null(JsonText.GetStringOrNull(ok.RootElement, "s"));
        Assert.Equal("fine", JsonText.GetStringOrNull(ok.RootElement, "ok"));
    }
}

/// <summary>
/// EndpointInvoker's last resort: an exception no reader turned into a validation failure is logged as one line with
/// a stable EventId (no token text) and answered 500 without internals, in the same shape on both hosts: RFC 6749
/// JSON <c>server_error</c> on OAuth routes, problem details elsewhere.
/// </summary>
public sealed class LastResortTests
{
    private const string Secret = "internal-detail-7f3a";

    /// <summary>A deny list whose lookup fails with an exception the endpoints do not expect.</summary>
    private sealed class BrokenDenyList : IAccessTokenDenyList
    {
        public ValueTask DenyAsync(string jti, DateTimeOffset expiresAt, CancellationToken cancellationToken) => throw new InvalidOperationException(Secret);

        public ValueTask<bool> IsDeniedAsync(string jti, CancellationToken cancellationToken) => throw new InvalidOperationException(Secret);
    }

    private sealed class CapturingLoggerProvider : ILoggerProvider
    {
        public ConcurrentQueue<(EventId Id, LogLevel Level, string Message, Exception? Exception)> Entries { get; } = new();

        public ILogger CreateLogger(string categoryName) => new Logger(this);

        public void Dispose()
        {
        }

        private sealed class Logger(CapturingLoggerProvider owner) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
                owner.Entries.Enqueue((eventId, logLevel, formatter(state, exception), exception));
        }
    }

    [Theory]
    [InlineData(HostKind.Standalone)]
    [InlineData(HostKind.Functions)]
    public async Task An_unexpected_exception_is_one_log_line_and_a_500_in_the_route_s_error_shape(HostKind kind)
    {
        var logs = new CapturingLoggerProvider();
        await using var host = kind == HostKind.Functions
            ? await TokenServiceTestHost.StartFunctionsAsync(services: s =>
            {
                s.AddSingleton<IAccessTokenDenyList>(new BrokenDenyList());
                s.AddSingleton<ILoggerProvider>(logs);
            })
            : await TokenServiceTestHost.StartAsync(configure: b =>
            {
                b.Services.AddSingleton<IAccessTokenDenyList>(new BrokenDenyList());
                b.Logging.AddProvider(logs);
            });
        var login = await host.LoginAsync("last-resort-user");

        using (var introspect = await host.IntrospectAsync(login.AccessToken))
        {
            await AssertOAuthErrorAsync(introspect, "server_error", HttpStatusCode.InternalServerError);
            Assert.DoesNotContain(Secret, await introspect.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        using (var revoke = await host.PostFormAsync("/oauth2/revoke", [new("token", login.AccessToken), new("token_type_hint", "access_token")], Basic("web", WebSecret)))
        {
            await AssertOAuthErrorAsync(revoke, "server_error", HttpStatusCode.InternalServerError);
        }

        using var request = new HttpRequestMessage(HttpMethod.Get, "/sessions");
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", login.AccessToken);
        using var sessions = await host.Client.SendAsync(request);
        var body = await sessions.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.InternalServerError, sessions.StatusCode);
        Assert.Equal("application/problem+json", sessions.Content.Headers.ContentType?.MediaType);
        Assert.Contains("\"status\":500", body, StringComparison.Ordinal);
        Assert.DoesNotContain(Secret, body, StringComparison.Ordinal);
        Assert.DoesNotContain("Exception", body, StringComparison.Ordinal);

        // One line per failure, EventId 1002, naming the exception type and never the message or the token.
        var lines = logs.Entries.Where(e => e.Id.Id == 1002).ToList();
        Assert.Equal(3, lines.Count);
        Assert.All(lines, line =>
        {
            Assert.Equal(LogLevel.Error, line.Level);
            Assert.Null(line.Exception);
            Assert.Contains("System.InvalidOperationException", line.Message, StringComparison.Ordinal);
            Assert.DoesNotContain(Secret, line.Message, StringComparison.Ordinal);
            Assert.DoesNotContain(login.AccessToken.Split('.')[1], line.Message, StringComparison.Ordinal);
            Assert.DoesNotContain('\n', line.Message);
        });
    }
}
