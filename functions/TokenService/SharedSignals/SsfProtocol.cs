using TokenService.Events;

namespace TokenService.SharedSignals;

/// <summary>The identifiers of the OpenID Shared Signals Framework 1.0 (SSF) and CAEP 1.0 this transmitter uses.</summary>
public static class SsfProtocol
{
    /// <summary>SSF 1.0 §7.1 <c>spec_version</c> of the final 1.0 specification.</summary>
    public const string SpecVersion = "1_0";

    /// <summary>SSF 1.0 §6.1.1: push delivery (RFC 8935), to the receiver's endpoint.</summary>
    public const string PushDeliveryMethod = "urn:ietf:rfc:8935";

    /// <summary>SSF 1.0 §6.1.2: poll delivery (RFC 8936), the transmitter's endpoint.</summary>
    public const string PollDeliveryMethod = "urn:ietf:rfc:8936";

    /// <summary>CAEP 1.0 §3.1 Session Revoked (the same URI the service acts on when it receives one).</summary>
    public const string SessionRevokedEventType = IdpEventTypes.CaepSessionRevoked;

    /// <summary>
    /// Our own event (docs/shared-signals.md, "Access token revoked"): the access token named by the SET's
    /// <c>jwt_id</c> subject (SSF 1.0 §3.5.1: its <c>iss</c> and <c>jti</c>) was revoked by its client (RFC 7009) and is
    /// refused until its <c>exp</c>; its session goes on. Not CAEP session-revoked: CAEP 1.0 §3.1 says that event revokes
    /// "the session identified by the subject", and a receiver acting on it would end a session that did not end. CAEP 1.0
    /// defines no token revocation event. The URI is a UUID URN (RFC 9562 §4): ours without a registration, and the same
    /// for every deployment, so that a receiver matches a constant.
    /// </summary>
    public const string AccessTokenRevokedEventType = "urn:uuid:ed12b786-aca5-4180-8382-efd719f712d9";

    /// <summary>
    /// Our own event (docs/shared-signals.md, "Signing key revoked"): the key named by the SET's opaque subject (its
    /// <c>kid</c>) left the JWKS and verifies nothing more; a receiver drops it and refetches the JWKS now. Not CAEP
    /// credential-change: CAEP 1.0 §3.3 is about a credential of the subject principal (a password, a FIDO2 key, an X.509
    /// certificate) with a required <c>credential_type</c> of that kind, not the transmitter's own token-signing key, and
    /// a receiver acting on it would act on a user. UUID URN as <see cref="AccessTokenRevokedEventType"/>.
    /// </summary>
    public const string SigningKeyRevokedEventType = "urn:uuid:2c4b0bae-9755-40ca-8bb6-5b22ceba07fc";

    /// <summary>SSF 1.0 §8.1.4.1 Verification Event.</summary>
    public const string VerificationEventType = "https://schemas.openid.net/secevent/ssf/event-type/verification";

    /// <summary>
    /// SSF 1.0 §8.1.1 <c>events_supported</c>. The verification event is not listed: SSF 1.0 §8.1.4 lets a transmitter
    /// send it whatever a stream's event lists say.
    /// </summary>
    public static IReadOnlyList<string> EventsSupported { get; } = [SessionRevokedEventType, AccessTokenRevokedEventType, SigningKeyRevokedEventType];

    /// <summary>SSF 1.0 §8.1.2 stream status values.</summary>
    public static string StatusName(SsfStreamStatus status) => status switch
    {
        SsfStreamStatus.Paused => "paused",
        SsfStreamStatus.Disabled => "disabled",
        _ => "enabled",
    };

    public static SsfStreamStatus? ParseStatus(string? value) => value switch
    {
        "enabled" => SsfStreamStatus.Enabled,
        "paused" => SsfStreamStatus.Paused,
        "disabled" => SsfStreamStatus.Disabled,
        _ => null,
    };
}

/// <summary>SSF 1.0 §8.1.2: what the transmitter does with a stream's events.</summary>
public enum SsfStreamStatus
{
    /// <summary>Events are transmitted.</summary>
    Enabled,

    /// <summary>Nothing is transmitted; events are held (up to the stream's bound) until the stream is enabled again.</summary>
    Paused,

    /// <summary>Nothing is transmitted and nothing is held.</summary>
    Disabled,
}
