using System.Net;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using TokenService.Clients;
using TokenService.Keys;
using TokenService.Jwt;

namespace TokenService.Configuration;

/// <summary>Start-up validation of <c>TokenService</c>: every message says which key to fix and how.</summary>
public sealed class TokenServiceOptionsValidator(IHostEnvironment environment) : IValidateOptions<TokenServiceOptions>
{
    public ValidateOptionsResult Validate(string? name, TokenServiceOptions o)
    {
        var errors = new List<string>();
        if (string.IsNullOrWhiteSpace(o.Issuer))
        {
            // Only Development has a default (http://127.0.0.1:7071). Elsewhere the issuer is refused only when it is
            // missing, never for differing from the listen address: behind App Service or a reverse proxy the host
            // listens on an internal http port while clients reach the public https name, and the issuer must be the
            // latter (RFC 8414 §2, §3.3: the issuer is the URL clients use and compare).
            errors.Add($"TokenService:Issuer is required outside Development (environment '{environment.EnvironmentName}'): set TokenService__Issuer to the URL clients reach this service at, e.g. https://tokens.example.edu; discovery and every token's iss are built from it.");
        }
        else if (!Uri.TryCreate(o.Issuer, UriKind.Absolute, out var issuer) || issuer.Scheme is not ("https" or "http") || !string.IsNullOrEmpty(issuer.Query) || !string.IsNullOrEmpty(issuer.Fragment))
        {
            errors.Add("TokenService:Issuer must be an absolute http(s) URL without query or fragment, e.g. https://tokens.example.edu.");
        }

        Positive(errors, "TokenService:AccessTokenLifetime", o.AccessTokenLifetime, TimeSpan.FromDays(1));
        Positive(errors, "TokenService:RefreshTokenLifetime", o.RefreshTokenLifetime, TimeSpan.FromDays(365));
        Positive(errors, "TokenService:SessionIdleTimeout", o.SessionIdleTimeout, TimeSpan.FromDays(365));
        Positive(errors, "TokenService:SessionAbsoluteLifetime", o.SessionAbsoluteLifetime, TimeSpan.FromDays(365));
        if (o.MaxSessionsPerUser is < 1 or > 50)
        {
            errors.Add("TokenService:MaxSessionsPerUser must be between 1 and 50 (one Table transaction holds the user row and every session it changes).");
        }

        if (o.RefreshTokenReuseLeeway < TimeSpan.Zero || o.RefreshTokenReuseLeeway > TimeSpan.FromMinutes(5))
        {
            errors.Add("TokenService:RefreshTokenReuseLeeway must be between 00:00:00 and 00:05:00.");
        }

        if (o.DependencyBudget < TimeSpan.FromSeconds(1) || o.DependencyBudget > TimeSpan.FromSeconds(60))
        {
            errors.Add("TokenService:DependencyBudget must be between 00:00:01 and 00:01:00, e.g. 00:00:10.");
        }

        if (o.HealthProbeBudget < TimeSpan.FromMilliseconds(100) || o.HealthProbeBudget > TimeSpan.FromSeconds(10))
        {
            errors.Add("TokenService:HealthProbeBudget must be between 00:00:00.1 and 00:00:10, e.g. 00:00:02.");
        }

        if (o.ClockSkew < TimeSpan.Zero || o.ClockSkew > TimeSpan.FromSeconds(60))
        {
            errors.Add("TokenService:ClockSkew must be between 00:00:00 and 00:01:00 (RFC 8725: keep skew small).");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    internal static void Positive(List<string> errors, string key, TimeSpan value, TimeSpan max)
    {
        if (value <= TimeSpan.Zero || value > max)
        {
            errors.Add($"{key} must be a positive TimeSpan (d.hh:mm:ss) of at most {max}.");
        }
    }
}

/// <summary>Start-up validation of <c>Idp</c>.</summary>
public sealed class IdpOptionsValidator(IHostEnvironment environment) : IValidateOptions<IdpOptions>
{
    public ValidateOptionsResult Validate(string? name, IdpOptions o)
    {
        if (!o.IsConfigured)
        {
            return environment.IsDevelopment()
                ? ValidateOptionsResult.Success
                : ValidateOptionsResult.Fail("Idp:Issuer, Idp:Audience and Idp:JwksUri (or Idp:JwksPath) are required outside Development.");
        }

        var errors = new List<string>();
        if (string.IsNullOrWhiteSpace(o.Issuer))
        {
            errors.Add("Idp:Issuer is required: the exact iss of the IdP's ID tokens.");
        }

        if (string.IsNullOrWhiteSpace(o.Audience))
        {
            errors.Add("Idp:Audience is required: the aud the IdP puts in ID tokens for this service.");
        }

        var hasUri = !string.IsNullOrWhiteSpace(o.JwksUri);
        var hasPath = !string.IsNullOrWhiteSpace(o.JwksPath);
        if (hasUri == hasPath)
        {
            errors.Add("Set exactly one of Idp:JwksUri (a URL) or Idp:JwksPath (a local JWKS file).");
        }
        else if (hasUri && (!Uri.TryCreate(o.JwksUri, UriKind.Absolute, out var uri) || !(uri.Scheme == "https" || (uri.Scheme == "http" && (uri.IsLoopback || environment.IsDevelopment())))))
        {
            errors.Add("Idp:JwksUri must be an absolute https URL (http only for loopback or in Development).");
        }
        else if (hasPath && !File.Exists(o.JwksPath))
        {
            errors.Add($"Idp:JwksPath points to a file that does not exist: {o.JwksPath}.");
        }

        if (string.IsNullOrWhiteSpace(o.UserIdClaim))
        {
            errors.Add("Idp:UserIdClaim must name a claim (default sub; Entra ID: oid).");
        }

        if (o.JwksRefetchInterval < TimeSpan.Zero || o.JwksCacheLifetime <= TimeSpan.Zero)
        {
            errors.Add("Idp:JwksRefetchInterval must be ≥ 0 and Idp:JwksCacheLifetime > 0.");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}

/// <summary>Start-up validation of <c>Clients</c>.</summary>
public sealed class ClientRegistryOptionsValidator(IHostEnvironment environment) : IValidateOptions<ClientRegistryOptions>
{
    public ValidateOptionsResult Validate(string? name, ClientRegistryOptions o)
    {
        var errors = new List<string>();
        if (o.Clients.Count == 0 && !environment.IsDevelopment())
        {
            // Only Development registers its walkthrough clients by default; a deployed service with none refuses
            // every token request, which is a configuration mistake to report now rather than at the first request.
            errors.Add($"Clients needs at least one client outside Development (environment '{environment.EnvironmentName}'): set Clients__0__ClientId, Clients__0__Type (spa, confidential, resource_server, admin) and its other keys.");
        }

        var ids = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < o.Clients.Count; i++)
        {
            var c = o.Clients[i];
            var key = $"Clients:{i}";
            if (string.IsNullOrWhiteSpace(c.ClientId) || c.ClientId.Length > 128 || c.ClientId.Any(ch => char.IsControl(ch) || ch == ':'))
            {
                errors.Add($"{key}:ClientId is required (at most 128 characters, no ':' or control characters).");
                continue;
            }

            if (!ids.Add(c.ClientId))
            {
                errors.Add($"{key}:ClientId '{c.ClientId}' is registered twice.");
            }

            if (c.DisplayName is { } displayName && (displayName.Trim().Length > 100 || displayName.Any(char.IsControl)))
            {
                errors.Add($"{key}:DisplayName, when set, must be at most 100 characters without control characters (the name users see on the sessions page).");
            }

            var type = RegisteredClient.ParseType(c.Type);
            if (type is null)
            {
                errors.Add($"{key}:Type must be one of spa, confidential, resource_server, admin.");
                continue;
            }

            if (type == ClientType.Spa)
            {
                if (!string.IsNullOrEmpty(c.Secret))
                {
                    errors.Add($"{key}: a spa client is public and must not have a Secret.");
                }

                if (c.AllowedOrigins.Count == 0)
                {
                    errors.Add($"{key}:AllowedOrigins needs at least one origin for a spa client (e.g. https://app.example.edu).");
                }
            }
            else if (string.IsNullOrEmpty(c.Secret) || c.Secret.Length < 8)
            {
                errors.Add($"{key}:Secret is required for a {c.Type} client (at least 8 characters; use a long random value).");
            }

            if (type == ClientType.ResourceServer && c.AllowedAudiences.Count == 0)
            {
                // Introspection answers a resource server only for tokens of its own audiences (RFC 7662 §4: do not
                // disclose tokens to parties they were not issued for); without any it could read every token.
                errors.Add($"{key}:AllowedAudiences needs at least one audience for a resource_server client (the API's audience, e.g. api://orders): without one it could introspect every token.");
            }

            foreach (var origin in c.AllowedOrigins)
            {
                if (!Uri.TryCreate(origin, UriKind.Absolute, out var uri) || uri.Scheme is not ("https" or "http") || uri.AbsolutePath != "/" || !string.IsNullOrEmpty(uri.Query))
                {
                    errors.Add($"{key}:AllowedOrigins value '{origin}' must be an origin: scheme://host[:port] with no path.");
                }
                else if (uri.Scheme == "http" && !environment.IsDevelopment() && !IsPotentiallyTrustworthyHost(uri))
                {
                    // An http origin's scripts can be altered by anyone on the network path, and the spa's tokens and
                    // credentialed CORS answers would go to them (ASVS V9.1.1: TLS for all client connectivity).
                    errors.Add($"{key}:AllowedOrigins value '{origin}' must be https outside Development (http only for localhost and loopback addresses such as 127.0.0.1).");
                }
            }

            if (c.AllowedScopes.Any(s => string.IsNullOrWhiteSpace(s) || s.Contains(' ', StringComparison.Ordinal)))
            {
                errors.Add($"{key}:AllowedScopes values must be single scope tokens without spaces.");
            }

            if (c.AllowedAudiences.Any(string.IsNullOrWhiteSpace))
            {
                errors.Add($"{key}:AllowedAudiences values must not be empty.");
            }

            if (c.IdpAudience is { Length: > 0 } idpAudience && (string.IsNullOrWhiteSpace(idpAudience) || idpAudience.Trim() != idpAudience))
            {
                errors.Add($"{key}:IdpAudience must be the exact aud the IdP puts in this application's ID tokens (its client id at the IdP), without surrounding spaces.");
            }
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    /// <summary>
    /// Hosts that browsers treat as secure contexts over plain http (W3C Secure Contexts §3.1, "potentially
    /// trustworthy origin"): <c>localhost</c> and loopback addresses (127.0.0.0/8, ::1), with any port.
    /// </summary>
    private static bool IsPotentiallyTrustworthyHost(Uri uri) =>
        uri.HostNameType == UriHostNameType.Dns
            ? string.Equals(uri.Host, "localhost", StringComparison.OrdinalIgnoreCase)
            : IPAddress.TryParse(uri.DnsSafeHost, out var address) && IPAddress.IsLoopback(address);
}

/// <summary>
/// Start-up validation of <c>Keys</c>, including the rule that the local file key runs only in Development (or in a
/// test host that registered <see cref="LocalSigningKeyOutsideDevelopment"/> in code).
/// </summary>
public sealed class KeysOptionsValidator(
    IHostEnvironment environment,
    IOptions<TokenServiceOptions> tokenOptions,
    IEnumerable<LocalSigningKeyOutsideDevelopment> localKeyOptIn) : IValidateOptions<KeysOptions>
{
    public ValidateOptionsResult Validate(string? name, KeysOptions o)
    {
        var errors = new List<string>();
        if (!JwsAlgorithms.Signing.Contains(o.Algorithm))
        {
            errors.Add("Keys:Algorithm must be RS256, PS256 or ES256.");
        }

        // The local key is a private key in a file next to the app: fine on a developer's machine, never on a
        // deployed one, whatever its environment is called (Staging, Test, a typo of Production). ASVS V6.4.1/V6.4.2:
        // key material belongs in a vault.
        if (!o.UsesKeyVault && !environment.IsDevelopment() && !localKeyOptIn.Any())
        {
            errors.Add($"Keys:KeyVaultUri (or Keys:Vaults:N:Uri) is required outside Development (environment '{environment.EnvironmentName}'): the local development signing key is refused there.");
        }

        ValidateVaults(errors, o);

        TokenServiceOptionsValidator.Positive(errors, "Keys:RotationInterval", o.RotationInterval, TimeSpan.FromDays(3650));
        TokenServiceOptionsValidator.Positive(errors, "Keys:PropagationTime", o.PropagationTime, TimeSpan.FromDays(365));
        TokenServiceOptionsValidator.Positive(errors, "Keys:RetentionTime", o.RetentionTime, TimeSpan.FromDays(365));
        TokenServiceOptionsValidator.Positive(errors, "Keys:CheckInterval", o.CheckInterval, TimeSpan.FromDays(365));
        if (o.PropagationTime >= o.RotationInterval)
        {
            errors.Add("Keys:PropagationTime must be shorter than Keys:RotationInterval.");
        }

        // The schedule alone publishes the active key, the next one ahead of use and the retired keys still in their
        // retention: the cap must leave room for them, since the scheduled rotation is never refused.
        var scheduled = o.RotationInterval > TimeSpan.Zero ? KeyLifecyclePolicy.KeysPublishedBySchedule(o) : 3;
        if (o.MaxPublishedKeys < scheduled || o.MaxPublishedKeys > 100)
        {
            errors.Add($"Keys:MaxPublishedKeys must be between {scheduled} (what the rotation schedule publishes at once: active, next and retired keys) and 100.");
        }

        // Where Azure Policy caps a key's validity (exp − created), a key must still outlive its tokens: published before
        // it signs, signing for a rotation interval, published after until its last token expired.
        if (o.MaximumKeyValidity is { } maximum && (maximum <= TimeSpan.Zero || maximum < o.KeyLifetime))
        {
            var rotation = maximum - o.PropagationTime - o.RetentionTime - o.CheckInterval;
            errors.Add($"Keys:MaximumKeyValidity ({maximum}) is shorter than Keys:PropagationTime + Keys:RotationInterval + Keys:RetentionTime ({o.KeyLifetime}): "
                + (rotation > o.PropagationTime
                    ? $"set Keys:RotationInterval to at most {rotation} (the maximum validity less propagation, retention and one check interval)."
                    : "shorten Keys:PropagationTime and Keys:RetentionTime, or ask for a longer maximum validity in the Azure Policy assignment."));
        }

        // The cross-check needs valid TokenService options; when they are invalid their own validator reports it,
        // and this one still reports every Keys error of the same start.
        TimeSpan? accessTokenLifetime;
        try
        {
            accessTokenLifetime = tokenOptions.Value.AccessTokenLifetime;
        }
        catch (OptionsValidationException)
        {
            accessTokenLifetime = null;
        }

        var minimumRetention = (accessTokenLifetime ?? TimeSpan.Zero) + o.JwksMaxAge;
        if (accessTokenLifetime is not null && o.RetentionTime < minimumRetention)
        {
            errors.Add($"Keys:RetentionTime must be at least the access-token lifetime plus the JWKS cache age ({minimumRetention}), so no token outlives its key in the JWKS.");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    /// <summary>The one-vault form or the list, never both; every URI https (loopback for tests) and distinct.</summary>
    private static void ValidateVaults(List<string> errors, KeysOptions o)
    {
        if (!string.IsNullOrWhiteSpace(o.KeyVaultUri) && o.Vaults.Count > 0)
        {
            errors.Add("Keys:KeyVaultUri and Keys:Vaults are both set: configure one vault as Keys:KeyVaultUri, or several as "
                + "Keys:Vaults:0:Uri, Keys:Vaults:1:Uri, … (Keys__Vaults__N__Uri), not both.");
            return;
        }

        var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        var vaults = o.EffectiveVaults;
        for (var i = 0; i < vaults.Count; i++)
        {
            var name = string.IsNullOrWhiteSpace(o.KeyVaultUri) ? $"Keys:Vaults:{i}:Uri" : "Keys:KeyVaultUri";
            // https only, loopback included: the clients' bearer token policy (Azure.Core's) refuses any other scheme, so
            // an http vault could only fail every request at run time.
            if (!Uri.TryCreate(vaults[i].Uri, UriKind.Absolute, out var vault) || vault.Scheme != "https")
            {
                errors.Add($"{name} must be an https URL, e.g. https://my-vault.vault.azure.net/ or https://my-hsm.managedhsm.azure.net/.");
            }
            else if (!seen.Add(vault.GetLeftPart(UriPartial.Authority)))
            {
                errors.Add($"{name} repeats the vault {vault.Host}: each entry of Keys:Vaults must be another vault.");
            }

            if (vaults[i].SignsPerWindow is { } own && own is < 1 or > 1_000_000)
            {
                errors.Add($"Keys:Vaults:{i}:SignsPerWindow must be between 1 and 1000000.");
            }
        }

        if (o.SignsPerWindow is < 1 or > 1_000_000)
        {
            errors.Add("Keys:SignsPerWindow must be between 1 and 1000000 (Key Vault Premium: 2000 per 10 s for RSA-2048 and P-256 HSM keys).");
        }

        if (o.SignWindow < TimeSpan.FromMilliseconds(100) || o.SignWindow > TimeSpan.FromMinutes(1))
        {
            errors.Add("Keys:SignWindow must be between 00:00:00.1 and 00:01:00, e.g. 00:00:10.");
        }

        if (o.SignAttemptTimeout < TimeSpan.FromMilliseconds(100) || o.SignAttemptTimeout > TimeSpan.FromMinutes(1))
        {
            errors.Add("Keys:SignAttemptTimeout must be between 00:00:00.1 and 00:01:00, e.g. 00:00:03.");
        }
    }
}

/// <summary>Start-up validation of <c>Events</c>.</summary>
public sealed class EventsOptionsValidator(IHostEnvironment environment) : IValidateOptions<EventsOptions>
{
    public ValidateOptionsResult Validate(string? name, EventsOptions o)
    {
        var errors = new List<string>();
        if (string.IsNullOrEmpty(o.WebhookSecret) && !environment.IsDevelopment())
        {
            errors.Add("Events:WebhookSecret is required outside Development: Event Grid deliveries must carry it (header X-Webhook-Key, or ?key=).");
        }
        else if (o.WebhookSecret is { Length: > 0 and < 16 })
        {
            errors.Add("Events:WebhookSecret must be at least 16 characters.");
        }

        if (!string.IsNullOrWhiteSpace(o.SsfIssuer) && string.IsNullOrWhiteSpace(o.SsfJwksUri) == string.IsNullOrWhiteSpace(o.SsfJwksPath))
        {
            errors.Add("With Events:SsfIssuer set exactly one of Events:SsfJwksUri or Events:SsfJwksPath is required.");
        }

        if (!string.IsNullOrWhiteSpace(o.SsfJwksUri) && (!Uri.TryCreate(o.SsfJwksUri, UriKind.Absolute, out var ssfJwks) || ssfJwks.Scheme != Uri.UriSchemeHttps))
        {
            // Whoever can alter these keys in transit can sign security events that end any user's sessions: keys must
            // come from a source whose provenance is trusted (RFC 7517 §9.1), so over TLS only.
            errors.Add("Events:SsfJwksUri must be an absolute https URL (in every environment), e.g. https://transmitter.example/jwks.json.");
        }

        if (!string.IsNullOrWhiteSpace(o.SsfJwksPath) && !File.Exists(o.SsfJwksPath))
        {
            errors.Add($"Events:SsfJwksPath points to a file that does not exist: {o.SsfJwksPath}.");
        }

        if (o.DeduplicationWindow <= TimeSpan.Zero)
        {
            errors.Add("Events:DeduplicationWindow must be positive, e.g. 1.01:00:00 (beyond Event Grid's 24-hour retry window).");
        }

        // RFC 8417 §2.2: iat is when the SET was issued. A SET older than this is refused; it must not outlive the
        // deduplication window, or a SET replayed after its id was forgotten would be acted on again.
        if (o.MaxSecurityEventAge <= TimeSpan.Zero)
        {
            errors.Add("Events:MaxSecurityEventAge must be positive, e.g. 1.00:00:00.");
        }
        else if (o.DeduplicationWindow > TimeSpan.Zero && o.MaxSecurityEventAge > o.DeduplicationWindow)
        {
            errors.Add($"Events:MaxSecurityEventAge ({o.MaxSecurityEventAge}) must not exceed Events:DeduplicationWindow ({o.DeduplicationWindow}): a SET is remembered only that long.");
        }

        if (o.EventTimeSkew < TimeSpan.Zero || o.EventTimeSkew > TimeSpan.FromMinutes(5))
        {
            errors.Add("Events:EventTimeSkew must be between 00:00:00 and 00:05:00 (default 00:00:05).");
        }

        if (o.ProcessedEventCapacity is < 1 or > 10_000_000)
        {
            errors.Add("Events:ProcessedEventCapacity must be between 1 and 10000000 (default 100000).");
        }

        // Microsoft Graph subscriptions: clientState is at most 128 characters.
        if (o.GraphClientState is { Length: > 0 } clientState && (string.IsNullOrWhiteSpace(clientState) || clientState.Length > 128))
        {
            errors.Add("Events:GraphClientState, when set, must be 1 to 128 characters: the clientState of the Microsoft Graph subscription.");
        }

        var subscription = o.GraphSubscription;
        if (subscription.Enabled)
        {
            if (!subscription.NotificationUrl!.StartsWith("EventGrid:?", StringComparison.Ordinal) && !(Uri.TryCreate(subscription.NotificationUrl, UriKind.Absolute, out var url) && url.Scheme == Uri.UriSchemeHttps))
            {
                errors.Add("Events:GraphSubscription:NotificationUrl must be an Event Grid partner topic (EventGrid:?azuresubscriptionid=…&resourcegroup=…&partnertopic=…&location=…) or an absolute https URL.");
            }

            // The app creates the subscription as its own identity through Events:GraphEndpoint, and Graph echoes the
            // clientState in every notification, which is how a notification is known to come from our subscription.
            if (string.IsNullOrWhiteSpace(o.GraphEndpoint))
            {
                errors.Add("Events:GraphSubscription:NotificationUrl needs Events:GraphEndpoint (e.g. https://graph.microsoft.com): the app manages the subscription through it.");
            }

            if (string.IsNullOrWhiteSpace(o.GraphClientState))
            {
                errors.Add("Events:GraphSubscription:NotificationUrl needs Events:GraphClientState: the subscription is created with it and every notification must carry it.");
            }
        }

        if (subscription.RenewBefore <= TimeSpan.FromDays(1) || subscription.RenewBefore >= GraphSubscriptionOptions.MaxLifetime - subscription.ExpirationMargin)
        {
            errors.Add("Events:GraphSubscription:RenewBefore must be more than 1 day (the check runs daily) and less than the subscription's lifetime (default 7.00:00:00).");
        }

        if (subscription.ExpirationMargin < TimeSpan.Zero || subscription.ExpirationMargin > TimeSpan.FromDays(1))
        {
            errors.Add("Events:GraphSubscription:ExpirationMargin must be between 00:00:00 and 1.00:00:00 (default 01:00:00).");
        }

        if (subscription.CheckInterval < TimeSpan.FromMinutes(1) || subscription.CheckInterval >= subscription.RenewBefore)
        {
            errors.Add("Events:GraphSubscription:CheckInterval must be at least 1 minute and less than Events:GraphSubscription:RenewBefore (default 1.00:00:00).");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}

/// <summary>
/// Start-up validation of <c>Storage</c>: outside Development the sessions must live in Table Storage. In-memory
/// sessions are lost at every restart (every user signed out, rotating refresh tokens and their reuse detection
/// forgotten) and are not shared between instances of a scaled-out app. Test hosts opt in in code
/// (<see cref="Sessions.InMemorySessionsOutsideDevelopment"/>), never by configuration.
/// </summary>
public sealed class StorageOptionsValidator(IHostEnvironment environment, IEnumerable<Sessions.InMemorySessionsOutsideDevelopment> inMemoryOptIn) : IValidateOptions<StorageOptions>
{
    public ValidateOptionsResult Validate(string? name, StorageOptions o) =>
        o.UsesTableStorage || environment.IsDevelopment() || inMemoryOptIn.Any()
            ? ValidateOptionsResult.Success
            : ValidateOptionsResult.Fail($"Storage:TableServiceUri (with the app's managed identity) or Storage:TableConnectionString is required outside Development (environment '{environment.EnvironmentName}'): in-memory sessions are lost at every restart and not shared between instances.");
}

/// <summary>
/// Refuses any setting whose value is still an App Service / Functions Key Vault reference
/// (<c>@Microsoft.KeyVault(SecretUri=…)</c> or <c>@Microsoft.KeyVault(VaultName=…;SecretName=…)</c>). The platform
/// passes that literal to the app when it cannot resolve the reference (no access to the vault, a deleted secret,
/// a network rule), and the literal passes every length check of a secret while being guessable: the vault name
/// in it is derivable from the app's public host name. A secret must be unpredictable (ASVS V6.4.1), so such a
/// value is never used, in any environment, whatever its key; the message names the key, never its value.
/// </summary>
public sealed class KeyVaultReferenceValidator(IConfiguration configuration) : IValidateOptions<TokenServiceOptions>
{
    public const string ReferencePrefix = "@Microsoft.KeyVault(";

    public ValidateOptionsResult Validate(string? name, TokenServiceOptions o)
    {
        var unresolved = UnresolvedReferences(configuration);
        return unresolved.Count == 0
            ? ValidateOptionsResult.Success
            : ValidateOptionsResult.Fail(unresolved.Select(key =>
                $"{key} (app setting {key.Replace(":", "__", StringComparison.Ordinal)}) is a Key Vault reference that did not resolve: grant the app's managed identity read access to the secret (Key Vault Secrets User), check the reference in the portal's Environment variables blade, then restart the app."));
    }

    /// <summary>Every configuration key whose value is an unresolved Key Vault reference, in key order.</summary>
    public static IReadOnlyList<string> UnresolvedReferences(IConfiguration configuration) =>
        configuration.AsEnumerable()
            .Where(entry => entry.Value?.TrimStart().StartsWith(ReferencePrefix, StringComparison.OrdinalIgnoreCase) == true)
            .Select(entry => entry.Key)
            .Distinct(StringComparer.OrdinalIgnoreCase)
            .Order(StringComparer.Ordinal)
            .ToList();
}

/// <summary>Start-up validation of <c>RateLimits</c>.</summary>
public sealed class RateLimitOptionsValidator : IValidateOptions<RateLimitOptions>
{
    public const int MaxPerMinute = 10_000_000;

    public ValidateOptionsResult Validate(string? name, RateLimitOptions o)
    {
        var errors = new List<string>();
        if (o.PerIpPerMinute is < 0 or > MaxPerMinute)
        {
            errors.Add($"RateLimits:PerIpPerMinute must be between 0 (off) and {MaxPerMinute}, e.g. 600.");
        }

        if (o.PerClientPerMinute is < 0 or > MaxPerMinute)
        {
            errors.Add($"RateLimits:PerClientPerMinute must be between 0 (off) and {MaxPerMinute}, e.g. 12000 per signing vault.");
        }

        if (o.FailedAuthBackoffMax < TimeSpan.Zero || o.FailedAuthBackoffMax > TimeSpan.FromHours(1))
        {
            errors.Add("RateLimits:FailedAuthBackoffMax must be between 00:00:00 (off) and 01:00:00, e.g. 00:01:00.");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
