using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using TokenService.Configuration;
using TokenService.Jwt;
using TokenService.Keys;
using TokenService.Sessions;

namespace TokenService.Tokens;

/// <summary>An issued access token and what the response reports about it.</summary>
public readonly record struct IssuedAccessToken(string Token, string Jti, DateTimeOffset ExpiresAt, int ExpiresIn, string Scope);

/// <summary>
/// Builds RFC 9068 access tokens with Microsoft.IdentityModel's <see cref="JsonWebTokenHandler"/>: header
/// <c>{"alg","kid","typ":"at+jwt"}</c> (kid: the RFC 7638 thumbprint of the signing key), claims iss, sub, aud, exp,
/// iat, nbf, jti, client_id, scope, sid, auth_time, acr, amr (docs/api.md, "Access token"). One signature call per token.
/// </summary>
/// <remarks>
/// The signature is made outside the handler, asynchronously: IdentityModel's <see cref="SignatureProvider.Sign(byte[])"/>
/// is synchronous, and with Key Vault a signature is a network call (the digest is signed in the vault; the private key
/// never leaves it), which must not block a thread on this hot path (no sync-over-async). So the handler serializes
/// and encodes header and payload with <see cref="DeferredSignatureProvider"/>, which signs nothing; the JWS signing
/// input is then exactly the token up to its last '.' (RFC 7515 §5.1 step 5), which
/// <see cref="ISigningKeyService.SignAsync"/> signs, and the base64url signature is appended (RFC 7515 §7.1).
/// </remarks>
public sealed class AccessTokenIssuer(ISigningKeyService keys, IOptions<TokenServiceOptions> options, TimeProvider time)
{
    private static readonly JsonWebTokenHandler Handler = new() { SetDefaultTimesOnTokenCreation = false };

    private readonly ConcurrentDictionary<SigningKey, SigningCredentials> _credentials = new();

    /// <param name="session">The session the token belongs to (its <c>sid</c>, subject and audiences).</param>
    /// <param name="scope">The token's scope.</param>
    /// <param name="cancellationToken">The request's budget.</param>
    /// <param name="dpopJkt">RFC 9449 §6.1: the thumbprint of the DPoP key the token is bound to (<c>cnf.jkt</c>); null for a bearer token.</param>
#pragma warning disable CA1068 // The optional binding comes last so existing callers stay as they are.
    public async ValueTask<IssuedAccessToken> IssueAsync(SessionRecord session, string scope, CancellationToken cancellationToken = default, string? dpopJkt = null)
#pragma warning restore CA1068
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

        var claims = new Dictionary<string, object>(14, StringComparer.Ordinal)
        {
            ["iss"] = options.Value.IssuerOrThrow,
            ["sub"] = session.Subject,
            // RFC 7519 §4.1.3: a single audience is written as a string.
            ["aud"] = session.Audiences.Count == 1 ? session.Audiences[0] : session.Audiences.ToArray(),
            ["exp"] = exp,
            ["iat"] = iat,
            ["nbf"] = iat,
            ["jti"] = jti,
            ["client_id"] = session.ClientId,
            ["scope"] = scope,
            ["sid"] = session.SessionId,
        };
        if (session.AuthTime is { } authTime)
        {
            claims["auth_time"] = authTime.ToUnixTimeSeconds();
        }

        if (session.Acr is not null)
        {
            claims["acr"] = session.Acr;
        }

        if (session.Amr.Count > 0)
        {
            claims["amr"] = session.Amr.ToArray();
        }

        if (dpopJkt is not null)
        {
            // RFC 9449 §6.1: the JWK SHA-256 thumbprint confirmation method.
            claims["cnf"] = new Dictionary<string, object>(1, StringComparer.Ordinal) { ["jkt"] = dpopJkt };
        }

        // The signer chooses the key (with several vaults: the least-loaded one, another after a failover), so the
        // header, which names its kid, is built for the key it chose.
        var signed = await keys.SignWithActiveKeyAsync(key => BuildSigningInput(key, claims), cancellationToken);
        return new IssuedAccessToken(Compact(signed.SigningInput, signed.Signature), jti, expiresAt, (int)(exp - iat), scope);
    }

    /// <summary>The compact JWS of <paramref name="claims"/> with header alg/kid/typ at+jwt, signed by <paramref name="key"/>.</summary>
    internal async ValueTask<string> SignAsync(SigningKey key, IDictionary<string, object> claims, CancellationToken cancellationToken)
    {
        var signingInput = BuildSigningInput(key, claims);
        return Compact(signingInput, await keys.SignAsync(key, signingInput, cancellationToken));
    }

    /// <summary>
    /// ASCII(BASE64URL(header) '.' BASE64URL(payload)), the JWS signing input (RFC 7515 §5.1), as the handler writes it
    /// for <paramref name="key"/>: header alg/kid of that key and typ at+jwt.
    /// </summary>
    private byte[] BuildSigningInput(SigningKey key, IDictionary<string, object> claims)
    {
        var credentials = _credentials.GetOrAdd(key, static k => new SigningCredentials(k.SecurityKey, k.Algorithm) { CryptoProviderFactory = DeferredSignatureProvider.Factory });

        // "header.payload." (the deferred provider's signature is empty): the signing input is everything before the last dot.
        var unsigned = Handler.CreateToken(new SecurityTokenDescriptor { Claims = claims, TokenType = "at+jwt", SigningCredentials = credentials });
        var signingInputLength = unsigned.Length - 1;
        if (signingInputLength <= 0 || unsigned[signingInputLength] != '.')
        {
            throw new InvalidOperationException("The token handler did not produce an unsigned JWS.");
        }

        return Encoding.ASCII.GetBytes(unsigned, 0, signingInputLength);
    }

    /// <summary>The compact JWS: signing input '.' BASE64URL(signature) (RFC 7515 §7.1).</summary>
    private static string Compact(ReadOnlyMemory<byte> signingInput, byte[] signature) =>
        string.Create(signingInput.Length + 1 + System.Buffers.Text.Base64Url.GetEncodedLength(signature.Length), (signingInput, signature), static (chars, state) =>
        {
            Encoding.ASCII.GetChars(state.signingInput.Span, chars);
            chars[state.signingInput.Length] = '.';
            System.Buffers.Text.Base64Url.EncodeToChars(state.signature, chars[(state.signingInput.Length + 1)..]);
        });

    /// <summary>
    /// Signs nothing: lets <see cref="JsonWebTokenHandler"/> write the header (alg and kid of the real key) and payload
    /// while the real signature is made asynchronously by <see cref="ISigningKeyService"/> (see the class remarks).
    /// </summary>
    private sealed class DeferredSignatureProvider(SecurityKey key, string algorithm) : SignatureProvider(key, algorithm)
    {
        public static readonly CryptoProviderFactory Factory = new DeferredFactory();

        public override byte[] Sign(byte[] input) => [];

        public override byte[] Sign(byte[] input, int offset, int count) => [];

        public override bool Sign(ReadOnlySpan<byte> data, Span<byte> destination, out int bytesWritten)
        {
            bytesWritten = 0;
            return true;
        }

        // Never used to verify: a deferred "signature" proves nothing.
        public override bool Verify(byte[] input, byte[] signature) => false;

        public override bool Verify(byte[] input, int inputOffset, int inputLength, byte[] signature, int signatureOffset, int signatureLength) => false;

        protected override void Dispose(bool disposing)
        {
        }

        private sealed class DeferredFactory : CryptoProviderFactory
        {
            public DeferredFactory()
            {
                CacheSignatureProviders = false;
            }

            public override SignatureProvider CreateForSigning(SecurityKey key, string algorithm) => new DeferredSignatureProvider(key, algorithm);

            public override SignatureProvider CreateForSigning(SecurityKey key, string algorithm, bool cacheProvider) => new DeferredSignatureProvider(key, algorithm);

            public override SignatureProvider CreateForVerifying(SecurityKey key, string algorithm) =>
                throw new NotSupportedException("Deferred signing keys verify nothing.");

            public override SignatureProvider CreateForVerifying(SecurityKey key, string algorithm, bool cacheProvider) =>
                throw new NotSupportedException("Deferred signing keys verify nothing.");

            public override bool IsSupportedAlgorithm(string algorithm, SecurityKey key) => true;

            public override void ReleaseSignatureProvider(SignatureProvider signatureProvider)
            {
            }
        }
    }
}
