using System.Buffers;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Options;
using TokenService.Configuration;
using TokenService.Events;
using TokenService.Jose;
using TokenService.Keys;
using TokenService.Sessions;

namespace TokenService.SharedSignals;

/// <summary>
/// Signs the Security Event Tokens (RFC 8417) this transmitter sends, with the service's signing keys through
/// <see cref="ISigningKeyService"/> (the key, and the <c>kid</c>, the JWKS publishes: SSF 1.0 §4.1.4, receivers resolve
/// the key through <c>jwks_uri</c>). One signature per SET.
/// <list type="bullet">
/// <item>Header <c>{"alg","kid","typ":"secevent+jwt"}</c>: explicit typing, RFC 8417 §2.3, required by SSF 1.0 §4.1.1.</item>
/// <item>Claims <c>iss</c> (our issuer, SSF 1.0 §4.1.6), <c>aud</c> (the stream's, SSF 1.0 §4.1.8), <c>jti</c> and
/// <c>iat</c> (RFC 8417 §2.2), <c>txn</c> (SSF 1.0 §4.1.9), <c>sub_id</c> (SSF 1.0 §3.1: the top-level subject, also for
/// CAEP events; a <c>jwt_id</c> or opaque one for our own events), <c>events</c> with exactly one event (SSF 1.0 §4.2.1).</item>
/// <item>No <c>sub</c> (SSF 1.0 §4.1.2) and no <c>exp</c> (SSF 1.0 §4.1.7).</item>
/// </list>
/// </summary>
public sealed class SecurityEventTokenSigner(ISigningKeyService keys, IOptions<TokenServiceOptions> options, TimeProvider time)
{
    /// <summary>RFC 8417 §2.3: the JOSE <c>typ</c> of a SET (the value <see cref="SecurityEventTokenValidator"/> requires of SETs it receives).</summary>
    public const string TokenType = SecurityEventTokenValidator.TokenType;

    /// <summary>The compact JWS of <paramref name="entry"/> on <paramref name="stream"/>.</summary>
    public async ValueTask<string> SignAsync(SsfStream stream, SsfOutboxEntry entry, CancellationToken cancellationToken)
    {
        var payload = Base64UrlEncoding.Encode(WritePayload(stream, entry));
        var signed = await keys.SignWithActiveKeyAsync(key => Encoding.ASCII.GetBytes(Base64UrlEncoding.Encode(WriteHeader(key)) + "." + payload), cancellationToken);
        return Encoding.ASCII.GetString(signed.SigningInput.Span) + "." + Base64UrlEncoding.Encode(signed.Signature);
    }

    private static byte[] WriteHeader(SigningKey key)
    {
        var buffer = new ArrayBufferWriter<byte>(128);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("alg", key.Algorithm);
            writer.WriteString("kid", key.Kid);
            writer.WriteString("typ", TokenType);
            writer.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }

    private byte[] WritePayload(SsfStream stream, SsfOutboxEntry entry)
    {
        var issuer = options.Value.IssuerOrThrow;
        var buffer = new ArrayBufferWriter<byte>(512);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("iss", issuer);
            // RFC 7519 §4.1.3: one audience as a string, several as an array (SSF 1.0 §4.1.8 allows either).
            if (stream.Audiences.Count == 1)
            {
                writer.WriteString("aud", stream.Audiences[0]);
            }
            else
            {
                writer.WriteStartArray("aud");
                foreach (var audience in stream.Audiences)
                {
                    writer.WriteStringValue(audience);
                }

                writer.WriteEndArray();
            }

            writer.WriteString("jti", entry.Jti);
            // RFC 8417 §2.2: when the SET was issued, i.e. signed (at its first transmission); the event's own time is
            // event_timestamp.
            writer.WriteNumber("iat", time.GetUtcNow().ToUnixTimeSeconds());
            if (entry.Txn is not null)
            {
                writer.WriteString("txn", entry.Txn);
            }

            writer.WritePropertyName("sub_id");
            switch (entry.EventType)
            {
                case SsfProtocol.VerificationEventType:
                    WriteVerification(writer, stream, entry);
                    break;
                case SsfProtocol.AccessTokenRevokedEventType:
                    WriteAccessTokenRevoked(writer, entry, issuer);
                    break;
                case SsfProtocol.SigningKeyRevokedEventType:
                    WriteSigningKeyRevoked(writer, entry, issuer);
                    break;
                default:
                    WriteSessionRevoked(writer, entry, issuer);
                    break;
            }

            writer.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }

    private static void WriteVerification(Utf8JsonWriter writer, SsfStream stream, SsfOutboxEntry entry)
    {
        // SSF 1.0 §8.1.4.1: a verification event's subject is an opaque subject whose id is the stream_id.
        WriteOpaque(writer, stream.StreamId);
        writer.WriteStartObject("events");
        writer.WriteStartObject(SsfProtocol.VerificationEventType);
        if (entry.State is not null)
        {
            writer.WriteString("state", entry.State);
        }

        writer.WriteEndObject();
        writer.WriteEndObject();
    }

    private static void WriteSessionRevoked(Utf8JsonWriter writer, SsfOutboxEntry entry, string issuer)
    {
        // SSF 1.0 §3.3 complex subject: the session by its sid (an opaque identifier, RFC 9493 §3.2.2; the access
        // tokens' sid claim) and its user by the tokens' iss and sub (RFC 9493 §3.2.1), members of one principal
        // (SSF 1.0 §3.3.1). CAEP 1.0 §3.1: a complex subject revokes any session matching those claims, and both
        // name exactly the session that ended.
        writer.WriteStartObject();
        writer.WriteString("format", "complex");
        writer.WritePropertyName("session");
        WriteOpaque(writer, entry.SessionId!);
        writer.WriteStartObject("user");
        writer.WriteString("format", "iss_sub");
        writer.WriteString("iss", issuer);
        writer.WriteString("sub", entry.Subject);
        writer.WriteEndObject();
        writer.WriteEndObject();

        writer.WriteStartObject("events");
        writer.WriteStartObject(SsfProtocol.SessionRevokedEventType);
        // CAEP 1.0 §3.1.1: event_timestamp is when the revocation occurred (the commit's time).
        writer.WriteNumber("event_timestamp", entry.OccurredAt.ToUnixTimeSeconds());
        if (entry.Reason is { } reason)
        {
            // CAEP 1.0 §2: reason_admin is an object of BCP 47 language tags; the stored reason code, as the audit
            // trail and metrics show it (docs/operations.md).
            WriteReason(writer, InitiatingEntity(reason), reason.Code);
        }

        writer.WriteEndObject();
        writer.WriteEndObject();
    }

    /// <summary>
    /// Our access-token-revoked event (<see cref="SsfProtocol.AccessTokenRevokedEventType"/>): the token by a
    /// <c>jwt_id</c> subject (SSF 1.0 §3.5.1: the token's <c>iss</c>, ours, and its <c>jti</c>), the top-level subject a
    /// new event type must use (SSF 1.0 §3.1.2). The event carries the CAEP 1.0 §2 optional claims, with the same
    /// meaning (its client revoked it: <c>system</c>, as a client's revocation of its refresh token), and
    /// <c>token_exp</c>, the token's <c>exp</c>, until which a receiver keeps the <c>jti</c> refused (SSF 1.0 §4.2.2:
    /// a field of the event type).
    /// </summary>
    private static void WriteAccessTokenRevoked(Utf8JsonWriter writer, SsfOutboxEntry entry, string issuer)
    {
        writer.WriteStartObject();
        writer.WriteString("format", "jwt_id");
        writer.WriteString("iss", issuer);
        writer.WriteString("jti", entry.RevokedId);
        writer.WriteEndObject();

        writer.WriteStartObject("events");
        writer.WriteStartObject(SsfProtocol.AccessTokenRevokedEventType);
        writer.WriteNumber("event_timestamp", entry.OccurredAt.ToUnixTimeSeconds());
        WriteReason(writer, InitiatingEntity(SessionEndReason.ClientRevocation), SessionEndReason.ClientRevocation.Code);
        if (entry.RevokedUntil is { } until)
        {
            writer.WriteNumber("token_exp", until.ToUnixTimeSeconds());
        }

        writer.WriteEndObject();
        writer.WriteEndObject();
    }

    /// <summary>
    /// Our signing-key-revoked event (<see cref="SsfProtocol.SigningKeyRevokedEventType"/>): the key by an opaque
    /// subject whose id is its <c>kid</c> (RFC 9493 §3.2.2), and, so that a receiver need not look it up, the
    /// <c>jwks_uri</c> to refetch now (SSF 1.0 §4.2.2: fields of the event type). An operator revoked it:
    /// <c>admin</c>.
    /// </summary>
    private static void WriteSigningKeyRevoked(Utf8JsonWriter writer, SsfOutboxEntry entry, string issuer)
    {
        WriteOpaque(writer, entry.RevokedId!);
        writer.WriteStartObject("events");
        writer.WriteStartObject(SsfProtocol.SigningKeyRevokedEventType);
        writer.WriteNumber("event_timestamp", entry.OccurredAt.ToUnixTimeSeconds());
        WriteReason(writer, "admin", SigningKeyRevokedReason);
        writer.WriteString("kid", entry.RevokedId);
        writer.WriteString("jwks_uri", issuer.TrimEnd('/') + "/.well-known/jwks.json");
        writer.WriteEndObject();
        writer.WriteEndObject();
    }

    /// <summary>The <c>reason_admin</c> code of a signing-key-revoked event.</summary>
    public const string SigningKeyRevokedReason = "signing_key_revoked";

    private static void WriteReason(Utf8JsonWriter writer, string initiatingEntity, string code)
    {
        writer.WriteString("initiating_entity", initiatingEntity);
        writer.WriteStartObject("reason_admin");
        writer.WriteString("en", code);
        writer.WriteEndObject();
    }

    /// <summary>
    /// CAEP 1.0 §2 <c>initiating_entity</c> (admin, user, policy, system) of a typed end reason: the user's own sign-out and
    /// revoke-others are <c>user</c>; a force logout <c>admin</c>; reuse detection and the session limit are our rules
    /// evaluated (<c>policy</c>); an IdP event and a client's revocation of its refresh token are another system's
    /// assertion (<c>system</c>).
    /// </summary>
    public static string InitiatingEntity(SessionEndReason reason) => reason.Actor switch
    {
        SessionEndActor.User => "user",
        SessionEndActor.Admin => "admin",
        SessionEndActor.System => "policy",
        _ => "system",
    };

    private static void WriteOpaque(Utf8JsonWriter writer, string id)
    {
        writer.WriteStartObject();
        writer.WriteString("format", "opaque");
        writer.WriteString("id", id);
        writer.WriteEndObject();
    }
}
