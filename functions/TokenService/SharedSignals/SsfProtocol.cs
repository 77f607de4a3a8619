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

    /// <summary>SSF 1.0 §8.1.4.1 Verification Event.</summary>
    public const string VerificationEventType = "https://schemas.openid.net/secevent/ssf/event-type/verification";

    /// <summary>
    /// SSF 1.0 §8.1.1 <c>events_supported</c>. The verification event is not listed: SSF 1.0 §8.1.4 lets a transmitter
    /// send it whatever a stream's event lists say.
    /// </summary>
    public static IReadOnlyList<string> EventsSupported { get; } = [SessionRevokedEventType];

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
