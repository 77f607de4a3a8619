using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TokenService.Configuration;
using TokenService.Idp;
using TokenService.Jwt;
using TokenService.Protocol;
using TokenService.Sessions;

namespace TokenService.Events;

/// <summary>What a verified SET asks for: end the sessions of a user, for one or more event types.</summary>
public sealed record SecurityEventOutcome(string? UserId, IReadOnlyList<SessionEndReason> Reasons, DateTimeOffset OccurredAt, string Issuer, string Jti, string? Unsupported)
{
    /// <summary>
    /// Deduplication key: a SET is identified by its issuer and <c>jti</c> (RFC 8417 §2.2: "jti" is unique per issuer),
    /// not by the bytes that carried it, so the same SET pushed again with other whitespace is still a duplicate.
    /// </summary>
    public string DeduplicationKey => "set|" + Issuer.Length.ToString(System.Globalization.CultureInfo.InvariantCulture) + "|" + Issuer + "|" + Jti;
}

/// <summary>Why a SET was refused, in RFC 8935 §2.3 error codes.</summary>
public sealed class SecurityEventRejectedException(string error, string description) : Exception(description)
{
    public SecurityEventRejectedException()
        : this(SecurityEventErrors.InvalidRequest, "The SET is invalid.")
    {
    }

    public SecurityEventRejectedException(string message, Exception innerException)
        : this(SecurityEventErrors.InvalidRequest, message + " " + innerException.Message)
    {
    }

    /// <summary>invalid_request, invalid_key, invalid_issuer, invalid_audience or authentication_failed.</summary>
    public string Error { get; } = error;
}

/// <summary>
/// Verifies OpenID Shared Signals Security Event Tokens (RFC 8417, <c>typ: secevent+jwt</c>) against the
/// configured transmitter's JWKS and reads the subject (SSF <c>sub_id</c>, or the event's <c>subject</c>):
/// <c>iss_sub</c> → its <c>sub</c> when its <c>iss</c> is our IdP's issuer (RFC 9493 §3.2.1: a <c>sub</c> is unique
/// only within its issuer), <c>opaque</c> → its <c>id</c>. Other subject formats, and <c>iss_sub</c> subjects of other
/// issuers, are acknowledged without action. <c>iat</c> and <c>jti</c> are required (RFC 8417 §2.2), and a SET older than
/// <see cref="EventsOptions.MaxSecurityEventAge"/> is refused.
/// </summary>
public sealed class SecurityEventTokenValidator
{
    /// <summary>RFC 8417 §2.3: the JOSE <c>typ</c> of a Security Event Token, required of every SET received (and written on every SET sent).</summary>
    public const string TokenType = "secevent+jwt";

    // 9999-12-31T23:59:59Z, the last second DateTimeOffset can hold.
    private const long MaxUnixSeconds = 253402300799;

    private readonly EventsOptions _options;
    private readonly TimeProvider _time;
    private readonly JwksConfigurationManager? _keys;
    private readonly JwtValidator? _validator;
    private readonly IdpTrust _idp;

    public SecurityEventTokenValidator(
        IOptions<EventsOptions> options, IOptions<TokenServiceOptions> service, IdpTrust idp, TimeProvider time, ILoggerFactory loggers, IHttpClientFactory? httpClients = null)
    {
        _options = options.Value;
        _time = time;
        _idp = idp;
        if (_options.SsfConfigured)
        {
            _keys = new JwksConfigurationManager(
                new JwksSource("ssf-transmitter", _options.SsfJwksUri, _options.SsfJwksPath, TimeSpan.FromSeconds(30), TimeSpan.FromHours(1)),
                time, loggers.CreateLogger<JwksConfigurationManager>(), httpClients);
            // Microsoft.IdentityModel (JwtValidator): typ secevent+jwt (RFC 8417 §2.3), exact iss and aud, any asymmetric
            // algorithm bound to the transmitter's key. exp is optional in a SET (RFC 8417 §2.2): not required, but when
            // present it is honoured like any JWT's (RFC 7519 §4.1.4), with the validator's bounded skew (60 s), so an
            // expired SET is refused. Its age is bounded by iat below either way.
            _validator = new JwtValidator(new JwtValidationOptions
            {
                Issuer = _options.SsfIssuer,
                Audiences = [_options.SsfAudience ?? service.Value.IssuerOrThrow],
                RequiredType = TokenType,
                RequireExpiration = false,
                RequireSubject = false,
                MaxTokenLength = 16 * 1024,
            }, _keys, time);
        }
    }

    public bool IsConfigured => _keys is not null;

    public async Task<SecurityEventOutcome> ValidateAsync(string set, CancellationToken cancellationToken)
    {
        if (_validator is null)
        {
            throw new SecurityEventRejectedException(SecurityEventErrors.InvalidIssuer, "No Shared Signals transmitter is configured (Events:SsfIssuer).");
        }

        var result = await _validator.ValidateAsync(set, cancellationToken);
        if (!result.IsValid)
        {
            throw result.Error switch
            {
                JwtValidationError.KeysUnavailable => new DependencyUnavailableException("ssf", "The transmitter's keys cannot be fetched."),
                JwtValidationError.UnknownKey or JwtValidationError.InvalidSignature => new SecurityEventRejectedException(SecurityEventErrors.InvalidKey, result.Description!),
                JwtValidationError.InvalidIssuer => new SecurityEventRejectedException(SecurityEventErrors.InvalidIssuer, result.Description!),
                JwtValidationError.InvalidAudience => new SecurityEventRejectedException(SecurityEventErrors.InvalidAudience, result.Description!),
                _ => new SecurityEventRejectedException(SecurityEventErrors.InvalidRequest, result.Description!),
            };
        }

        // The validator read the registered claims only; the rest of the claims set (events, sub_id) is read here, so it
        // is checked first to be UTF-8 JSON whose strings and member names are all Unicode text (RFC 8259 §8; RFC 7519
        // §7.2 step 10). After that no lookup below can throw for the text, and each value's kind is checked.
        var payloadBytes = Base64UrlEncoding.DecodeStrict(set.Split('.')[1]);
        if (payloadBytes is null || !JsonText.IsWellFormed(payloadBytes, _validator.Options.MaxPayloadDepth))
        {
            throw new SecurityEventRejectedException(SecurityEventErrors.InvalidRequest, "The SET's claims are not valid UTF-8 JSON.");
        }

        using var payload = JsonDocument.Parse(payloadBytes, new JsonDocumentOptions { MaxDepth = _validator.Options.MaxPayloadDepth });
        var root = payload.RootElement;
        if (!root.TryGetProperty("events", out var events) || events.ValueKind != JsonValueKind.Object || !events.EnumerateObject().Any())
        {
            throw new SecurityEventRejectedException(SecurityEventErrors.InvalidRequest, "The SET has no events claim (RFC 8417 §2.2).");
        }

        // RFC 8417 §2.2: "iat" and "jti" are REQUIRED. A SET without iat cannot be dated (reading it as "now" would
        // make any old SET current), and one without jti cannot be recognised when it is delivered again.
        if (result.Payload!.IssuedAt is not { } issued || issued is < 0 or > MaxUnixSeconds)
        {
            throw new SecurityEventRejectedException(SecurityEventErrors.InvalidRequest, "The SET has no iat (RFC 8417 §2.2).");
        }

        if (string.IsNullOrEmpty(result.Payload.JwtId) || result.Payload.JwtId.Length > 256)
        {
            throw new SecurityEventRejectedException(SecurityEventErrors.InvalidRequest, "The SET has no valid jti (RFC 8417 §2.2).");
        }

        var iat = DateTimeOffset.FromUnixTimeSeconds(issued);
        if (_time.GetUtcNow() - iat > _options.MaxSecurityEventAge)
        {
            throw new SecurityEventRejectedException(SecurityEventErrors.InvalidRequest, "The SET is too old to be acted on (iat is beyond Events:MaxSecurityEventAge).");
        }

        var occurredAt = iat;
        var reasons = new List<SessionEndReason>();
        JsonElement? subject = root.TryGetProperty("sub_id", out var subId) ? subId : null;
        foreach (var e in events.EnumerateObject())
        {
            if (IdpEventTypes.SecurityEventReason(e.Name) is { } reason)
            {
                reasons.Add(reason);
            }

            if (e.Value.ValueKind == JsonValueKind.Object)
            {
                if (subject is null && e.Value.TryGetProperty("subject", out var eventSubject))
                {
                    subject = eventSubject;
                }

                // RFC 8417 §2.2 / SSF: event_timestamp is a NumericDate; one outside DateTimeOffset's range (e.g. 99999999999999)
                // is ignored rather than thrown by FromUnixTimeSeconds, and iat stays the time of the event.
                if (e.Value.TryGetProperty("event_timestamp", out var ts) && ts.ValueKind == JsonValueKind.Number && ts.TryGetInt64(out var seconds)
                    && seconds is >= 0 and <= MaxUnixSeconds)
                {
                    occurredAt = DateTimeOffset.FromUnixTimeSeconds(seconds);
                }
            }
        }

        if (subject is not { ValueKind: JsonValueKind.Object } s)
        {
            throw new SecurityEventRejectedException(SecurityEventErrors.InvalidRequest, "The SET names no subject (sub_id or event subject).");
        }

        // RFC 9493 §3: a subject identifier's "format" (older drafts: "subject_type") and its members are strings; any
        // other kind makes the SET invalid (400 invalid_request), never an exception.
        var formatMember = s.TryGetProperty("format", out var f) ? f : s.TryGetProperty("subject_type", out var st) ? st : (JsonElement?)null;
        string? format = null;
        if (formatMember is { } member && !JsonText.TryGetString(member, out format))
        {
            throw new SecurityEventRejectedException(SecurityEventErrors.InvalidRequest, "The SET's subject format is not a string.");
        }

        string? userId = format switch
        {
            "iss_sub" or "iss-sub" => JsonText.GetStringOrNull(s, "sub"),
            "opaque" => JsonText.GetStringOrNull(s, "id"),
            _ => null,
        };
        var issuer = result.Payload.Issuer ?? string.Empty;
        var jti = result.Payload.JwtId;
        if (format is "iss_sub" or "iss-sub")
        {
            // RFC 9493 §3.2.1: an Issuer and Subject identifier has both members; the sub is only meaningful within
            // that issuer. A subject of another issuer names somebody else, however its sub reads: acknowledged, no action.
            if (userId is null || JsonText.GetStringOrNull(s, "iss") is not { } subjectIssuer)
            {
                throw new SecurityEventRejectedException(SecurityEventErrors.InvalidRequest, "The SET's subject is incomplete.");
            }

            if (!string.Equals(subjectIssuer, _idp.Issuer, StringComparison.Ordinal))
            {
                return new SecurityEventOutcome(null, reasons, occurredAt, issuer, jti, "the iss_sub subject names another issuer than the configured IdP");
            }
        }

        if (userId is null && format is "opaque")
        {
            throw new SecurityEventRejectedException(SecurityEventErrors.InvalidRequest, "The SET's subject is incomplete.");
        }

        return new SecurityEventOutcome(userId, reasons, occurredAt, issuer, jti, userId is null ? $"subject format '{format}' is not supported" : null);
    }
}
