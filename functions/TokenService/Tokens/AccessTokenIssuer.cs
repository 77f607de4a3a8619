using System.Buffers;
using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Options;
using TokenService.Configuration;
using TokenService.Http;
using TokenService.Keys;
using TokenService.Sessions;
using TokenService.Validation.Jose;

namespace TokenService.Tokens;

/// <summary>An issued access token and what the response reports about it.</summary>
public readonly record struct IssuedAccessToken(string Token, string Jti, DateTimeOffset ExpiresAt, int ExpiresIn, string Scope);

/// <summary>
/// Builds RFC 9068 access tokens: header <c>{"alg","kid","typ":"at+jwt"}</c>, claims iss, sub, aud, exp,
/// iat, nbf, jti, client_id, scope, sid, auth_time, acr, amr. One signature call per token.
/// </summary>
public sealed class AccessTokenIssuer(ISigningKeyService keys, IOptions<TokenServiceOptions> options, TimeProvider time)
{
    // JWT JSON is never embedded in HTML: '+' in "at+jwt" and URL characters stay unescaped, as other issuers write them.
    private static readonly JsonWriterOptions JwtJson = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private readonly ConcurrentDictionary<string, byte[]> _encodedHeaders = new(StringComparer.Ordinal);

    public async ValueTask<IssuedAccessToken> IssueAsync(SessionRecord session, string scope, CancellationToken cancellationToken = default)
    {
        var now = time.GetUtcNow();
        var lifetime = options.Value.AccessTokenLifetime;

        // An access token never outlives its session (ASVS V7.1.1 absolute lifetime).
        var expiresAt = now + lifetime;
        if (expiresAt > session.AbsoluteExpiresAt)
        {
            expiresAt = session.AbsoluteExpiresAt;
        }

        var iat = now.ToUnixTimeSeconds();
        var exp = expiresAt.ToUnixTimeSeconds();
        Span<byte> jtiBytes = stackalloc byte[16];
        RandomNumberGenerator.Fill(jtiBytes);
        var jti = Base64UrlEncoding.Encode(jtiBytes);

        var payloadJson = new ArrayBufferWriter<byte>(512);
        using (var writer = new Utf8JsonWriter(payloadJson, JwtJson))
        {
            writer.WriteStartObject();
            writer.WriteString("iss", options.Value.IssuerOrThrow);
            writer.WriteString("sub", session.Subject);
            writer.WriteStringOrArray("aud", session.Audiences);

            writer.WriteNumber("exp", exp);
            writer.WriteNumber("iat", iat);
            writer.WriteNumber("nbf", iat);
            writer.WriteString("jti", jti);
            writer.WriteString("client_id", session.ClientId);
            writer.WriteString("scope", scope);
            writer.WriteString("sid", session.SessionId);
            if (session.AuthTime is { } authTime)
            {
                writer.WriteNumber("auth_time", authTime.ToUnixTimeSeconds());
            }

            if (session.Acr is not null)
            {
                writer.WriteString("acr", session.Acr);
            }

            if (session.Amr.Count > 0)
            {
                writer.WriteStringArray("amr", session.Amr);
            }

            writer.WriteEndObject();
        }

        // The signer chooses the key (with several vaults: the least-loaded one, another after a failover), so the
        // header, which names its kid, is built for the key it chose.
        var payload = payloadJson.WrittenMemory;
        var signed = await keys.SignWithActiveKeyAsync(
            key => BuildSigningInput(_encodedHeaders.GetOrAdd(key.Kid + "|" + key.Algorithm, _ => EncodeHeader(key)), payload), cancellationToken);
        return new IssuedAccessToken(Compact(signed.SigningInput, signed.Signature), jti, expiresAt, (int)(exp - iat), scope);
    }

    /// <summary>Signs header.payload and returns the compact JWS (RFC 7515 §7.1).</summary>
    internal async ValueTask<string> SignAsync(SigningKey key, byte[] encodedHeader, ReadOnlyMemory<byte> payloadJson, CancellationToken cancellationToken)
    {
        var signingInput = BuildSigningInput(encodedHeader, payloadJson);
        return Compact(signingInput, await keys.SignAsync(key, signingInput, cancellationToken));
    }

    /// <summary>ASCII(BASE64URL(header) '.' BASE64URL(payload)): the JWS signing input (RFC 7515 §5.1 step 6).</summary>
    private static byte[] BuildSigningInput(byte[] encodedHeader, ReadOnlyMemory<byte> payloadJson)
    {
        var payloadLength = System.Buffers.Text.Base64Url.GetEncodedLength(payloadJson.Length);
        var signingInput = new byte[encodedHeader.Length + 1 + payloadLength];
        encodedHeader.CopyTo(signingInput, 0);
        signingInput[encodedHeader.Length] = (byte)'.';
        System.Buffers.Text.Base64Url.EncodeToUtf8(payloadJson.Span, signingInput.AsSpan(encodedHeader.Length + 1));
        return signingInput;
    }

    private static string Compact(ReadOnlyMemory<byte> signingInput, byte[] signature) =>
        string.Create(signingInput.Length + 1 + System.Buffers.Text.Base64Url.GetEncodedLength(signature.Length), (signingInput, signature), static (chars, state) =>
        {
            Encoding.ASCII.GetChars(state.signingInput.Span, chars);
            chars[state.signingInput.Length] = '.';
            System.Buffers.Text.Base64Url.EncodeToChars(state.signature, chars[(state.signingInput.Length + 1)..]);
        });

    internal static byte[] EncodeHeader(SigningKey key)
    {
        var json = new ArrayBufferWriter<byte>(128);
        using (var writer = new Utf8JsonWriter(json, JwtJson))
        {
            writer.WriteStartObject();
            writer.WriteString("alg", key.Algorithm);
            writer.WriteString("kid", key.Kid);
            writer.WriteString("typ", "at+jwt");
            writer.WriteEndObject();
        }

        return Encoding.ASCII.GetBytes(Base64UrlEncoding.Encode(json.WrittenSpan));
    }
}
