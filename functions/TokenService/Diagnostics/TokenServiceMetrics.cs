using System.Diagnostics;
using System.Diagnostics.Metrics;
using TokenService.Sessions;

namespace TokenService.Diagnostics;

/// <summary>
/// The service's metrics on one <see cref="Meter"/> named <see cref="TokenServiceDiagnostics.Name"/>, in OpenTelemetry
/// semantic-convention style (dotted lower-case names, UCUM units, <c>{thing}</c> annotations for counts). The meter
/// comes from the host's <see cref="IMeterFactory"/> (one singleton per service provider), so a host's measurements
/// are its own and end with its container, while exporters still subscribe by the unchanged meter name.
/// <see cref="Counter{T}.Add(T, in TagList)"/> and <see cref="Histogram{T}.Record(T, in TagList)"/>
/// return at once when nothing listens, and <see cref="TagList"/> is a struct holding up to eight tags inline, so the
/// hot path (issue, refresh) allocates nothing for metrics without a listener. Tag values are bounded sets (client
/// ids are configured, reasons are our constants or enum names): never a user id, session id or token.
/// docs/operations.md lists every instrument.
/// </summary>
public sealed class TokenServiceMetrics
{
    // Latency buckets for calls of milliseconds to seconds (Key Vault HSM signing, Table operations, JWKS fetches): the
    // SDK's default boundaries are for milliseconds recorded in seconds and would put every call into the first bucket.
    private static readonly InstrumentAdvice<double> LatencyAdvice = new()
    {
        HistogramBucketBoundaries = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 10],
    };

    public TokenServiceMetrics(IMeterFactory meterFactory)
    {
        ArgumentNullException.ThrowIfNull(meterFactory);

        // The factory owns the meter (it is disposed with the service provider) and hands the same meter to every
        // caller asking for this name and version, so the key gauges of InstrumentedSigningKeyService share it.
        Meter = meterFactory.Create(new MeterOptions(TokenServiceDiagnostics.Name) { Version = TokenServiceDiagnostics.Version });

        TokensIssued = Meter.CreateCounter<long>(
            "tokenservice.tokens.issued", "{token}", "Access tokens issued by token exchange (RFC 8693): sessions opened.");
        TokensRefreshed = Meter.CreateCounter<long>(
            "tokenservice.tokens.refreshed", "{token}", "Successful refreshes (RFC 6749 §6) with refresh-token rotation.");
        TokensRevoked = Meter.CreateCounter<long>(
            "tokenservice.tokens.revoked", "{token}", "Tokens revoked by their client (RFC 7009), by kind (refresh_token ends a session, access_token is denied).");
        TokensIntrospected = Meter.CreateCounter<long>(
            "tokenservice.tokens.introspected", "{request}",
            "Introspection requests (RFC 7662) answered, by resource server and whether the token was active: the load APIs put on the service (Shared Signals receivers lower it).");
        RefreshTokenReuse = Meter.CreateCounter<long>(
            "tokenservice.refresh_tokens.reuse_detected", "{event}", "Rotated refresh tokens presented again; each one revoked its session (RFC 9700 §4.14.2).");
        SessionsEvicted = Meter.CreateCounter<long>(
            "tokenservice.sessions.evicted", "{session}", "Sessions ended to make room under the per-user session limit.");
        SessionsRevoked = Meter.CreateCounter<long>(
            "tokenservice.sessions.revoked", "{session}", "Sessions ended, by reason (client, reuse, admin, session limit, IdP event).");
        SessionsEndedByIdpEvent = Meter.CreateCounter<long>(
            "tokenservice.sessions.ended_by_idp_event", "{session}", "Sessions ended by IdP events, by event source and type.");
        IdTokensRejected = Meter.CreateCounter<long>(
            "tokenservice.id_tokens.rejected", "{token}", "ID tokens refused at token exchange, by reason.");
        AdminLogouts = Meter.CreateCounter<long>(
            "tokenservice.admin.logouts", "{request}", "Force-logout requests of an admin client (every session of a user).");
        DependencyUnavailable = Meter.CreateCounter<long>(
            "tokenservice.dependency.unavailable", "{response}", "Requests answered 503 because a dependency (storage, keys, idp …) failed or throttled.");
        KeyVaultErrors = Meter.CreateCounter<long>(
            "tokenservice.keyvault.errors", "{response}", "Key Vault error responses, by operation, status and Key Vault's innermost error code (KeyDisabled, ForbiddenByRbac, Throttled …).");
        GraphSubscriptionMissedNotifications = Meter.CreateCounter<long>(
            "tokenservice.idp.graph_subscription.missed", "{notification}",
            "Microsoft Graph 'missed' lifecycle notifications: change notifications Graph could not deliver (users to reconcile).");
        SigningDuration = Meter.CreateHistogram(
            "tokenservice.signing.duration", "s", "Duration of one signature by the signing key provider (Key Vault or local key).", advice: LatencyAdvice);
        StoreDuration = Meter.CreateHistogram(
            "tokenservice.store.duration", "s", "Duration of one session store operation.", advice: LatencyAdvice);
        IdpJwksFetchDuration = Meter.CreateHistogram(
            "tokenservice.idp.jwks.fetch.duration", "s", "Duration of one fetch of an IdP's (or event transmitter's) JWKS.", advice: LatencyAdvice);
    }

    /// <summary>The meter of this service provider, named <see cref="TokenServiceDiagnostics.Name"/>.</summary>
    public Meter Meter { get; }

    public Counter<long> TokensIssued { get; }

    public Counter<long> TokensRefreshed { get; }

    public Counter<long> TokensRevoked { get; }

    public Counter<long> TokensIntrospected { get; }

    public Counter<long> RefreshTokenReuse { get; }

    public Counter<long> SessionsEvicted { get; }

    public Counter<long> SessionsRevoked { get; }

    public Counter<long> SessionsEndedByIdpEvent { get; }

    public Counter<long> IdTokensRejected { get; }

    public Counter<long> AdminLogouts { get; }

    public Counter<long> DependencyUnavailable { get; }

    public Counter<long> KeyVaultErrors { get; }

    public Counter<long> GraphSubscriptionMissedNotifications { get; }

    public Histogram<double> SigningDuration { get; }

    public Histogram<double> StoreDuration { get; }

    public Histogram<double> IdpJwksFetchDuration { get; }

    /// <summary>Tag names, as constants so that call sites and tests agree.</summary>
    public static class Tags
    {
        public const string ClientId = "tokenservice.client.id";
        public const string TokenKind = "tokenservice.token.kind";
        public const string TokenActive = "tokenservice.token.active";
        public const string Reason = "tokenservice.reason";
        public const string EventSource = "tokenservice.idp_event.source";
        public const string EventType = "tokenservice.idp_event.type";
        public const string Operation = "tokenservice.store.operation";
        public const string Dependency = "tokenservice.dependency";
        public const string Algorithm = "tokenservice.key.algorithm";
        public const string KeyVaultOperation = "tokenservice.keyvault.operation";

        /// <summary>Key Vault's innermost error code (<c>error.innererror.code</c>, else <c>error.code</c>).</summary>
        public const string KeyVaultErrorCode = "tokenservice.keyvault.error_code";

        /// <summary>OpenTelemetry general attribute: the class of error a failed operation ended with.</summary>
        public const string ErrorType = "error.type";
        public const string ServerAddress = "server.address";
        public const string HttpStatusCode = "http.response.status_code";
    }

    public void Issued(string clientId) => TokensIssued.Add(1, new TagList { { Tags.ClientId, clientId } });

    public void Refreshed(string clientId) => TokensRefreshed.Add(1, new TagList { { Tags.ClientId, clientId } });

    public void Revoked(string clientId, string kind) => TokensRevoked.Add(1, new TagList { { Tags.ClientId, clientId }, { Tags.TokenKind, kind } });

    public void Introspected(string clientId, bool active) =>
        TokensIntrospected.Add(1, new TagList { { Tags.ClientId, clientId }, { Tags.TokenActive, active ? "true" : "false" } });

    public void ReuseDetected(string clientId) => RefreshTokenReuse.Add(1, new TagList { { Tags.ClientId, clientId } });

    public void Evicted(string clientId, int count)
    {
        if (count > 0)
        {
            SessionsEvicted.Add(count, new TagList { { Tags.ClientId, clientId } });
        }
    }

    public void SessionsEnded(int count, SessionEndReason reason)
    {
        if (count > 0)
        {
            SessionsRevoked.Add(count, new TagList { { Tags.Reason, reason.MetricTag } });
        }
    }

    /// <summary>
    /// Sessions an IdP event ended. The tags are the reason's source and type (idp/account-disabled, graph/user-deleted,
    /// auth0/user-blocked, ssf/…), our constants, never the event's own text, so that an IdP cannot grow the number of
    /// series.
    /// </summary>
    public void EndedByIdpEvent(int count, SessionEndReason reason)
    {
        if (count > 0)
        {
            SessionsEndedByIdpEvent.Add(count, new TagList { { Tags.EventSource, reason.IdpSource ?? "other" }, { Tags.EventType, reason.IdpEventType ?? reason.Code } });
        }
    }

    public void IdTokenRejected(string clientId, string reason) =>
        IdTokensRejected.Add(1, new TagList { { Tags.ClientId, clientId }, { Tags.Reason, reason } });

    public void AdminLogout(string adminClientId) => AdminLogouts.Add(1, new TagList { { Tags.ClientId, adminClientId } });

    public void GraphSubscriptionMissed() => GraphSubscriptionMissedNotifications.Add(1);

    public void Unavailable(string dependency) => DependencyUnavailable.Add(1, new TagList { { Tags.Dependency, dependency } });

    /// <summary>
    /// One Key Vault error response. The code comes from the vault's answer, so only a short identifier is kept as it
    /// is (Key Vault's codes are PascalCase words); anything else is "other", so that a response cannot grow the series.
    /// </summary>
    public void KeyVaultError(string operation, int status, string? errorCode) =>
        KeyVaultErrors.Add(1, new TagList
        {
            { Tags.KeyVaultOperation, operation },
            { Tags.HttpStatusCode, status },
            { Tags.KeyVaultErrorCode, errorCode is { Length: > 0 and <= 64 } && errorCode.All(char.IsAsciiLetterOrDigit) ? errorCode : "other" },
        });

    /// <summary>Seconds since <paramref name="startTimestamp"/> (<see cref="Stopwatch.GetTimestamp"/>).</summary>
    public static double SecondsSince(long startTimestamp) => Stopwatch.GetElapsedTime(startTimestamp).TotalSeconds;
}
