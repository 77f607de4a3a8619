using System.Security.Claims;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using TokenService.Validation;

namespace SampleApi;

/// <summary>
/// Builds the sample resource server: <c>GET /orders</c> for the bearer token's user, validated by ASP.NET Core's
/// JwtBearer handler (discovery and JWKS of the token service, signature, <c>typ</c> at+jwt, <c>iss</c>, <c>aud</c>,
/// expiry) and TokenService.Validation's session check (session state and the jti deny list by introspection, and the
/// Shared Signals receiver when <c>SampleApi:SharedSignals:Delivery</c> is poll or push), with
/// CORS for the single-page apps that call it. The browser tests build it too.
/// </summary>
public static class SampleApiHost
{
    public const string CorsPolicyName = "spa";

    /// <param name="args">Command-line arguments (<c>--urls</c>, <c>--environment</c>, configuration keys).</param>
    /// <param name="configure">Runs after the defaults, before the app is built (tests add configuration here).</param>
    /// <param name="validation">Runs after the options were read from configuration (tests set a backchannel here).</param>
    /// <param name="sessionCheck">Runs after the session check's options were read from configuration.</param>
    public static WebApplication Build(
        string[] args, Action<WebApplicationBuilder>? configure = null, Action<JwtBearerOptions>? validation = null, Action<SessionCheckOptions>? sessionCheck = null)
    {
        var builder = WebApplication.CreateSlimBuilder(args);
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.AddServerHeader = false);
        configure?.Invoke(builder);

        var settings = builder.Configuration.GetSection(SampleApiOptions.SectionName).Get<SampleApiOptions>() ?? new SampleApiOptions();
        if (builder.Environment.IsDevelopment())
        {
            settings.ApplyDevelopmentDefaults();
        }

        if (string.IsNullOrEmpty(settings.Authority) || string.IsNullOrEmpty(settings.Audience))
        {
            throw new InvalidOperationException("SampleApi:Authority and SampleApi:Audience are required outside Development.");
        }

        builder.Services.AddAuthentication(JwtBearerDefaults.AuthenticationScheme)
            .AddJwtBearer(o =>
            {
                // Discovery ({Authority}/.well-known/openid-configuration) and the JWKS, by the standard handler.
                o.Authority = settings.Authority;
                o.Audience = settings.Audience;
                o.RequireHttpsMetadata = settings.Authority.StartsWith("https://", StringComparison.OrdinalIgnoreCase) || !builder.Environment.IsDevelopment();
                o.MapInboundClaims = false;
                o.TokenValidationParameters.ValidTypes = ["at+jwt"];
                o.TokenValidationParameters.ValidAlgorithms = ["RS256", "PS256", "ES256"];
                o.TokenValidationParameters.ClockSkew = TimeSpan.FromSeconds(30);
                validation?.Invoke(o);
            })
            .AddTokenServiceSessionCheck(o =>
            {
                o.ClientId = settings.ClientId;
                o.ClientSecret = settings.ClientSecret;
                o.PublicOrigin = settings.PublicOrigin;
                // With poll or push, sessions ended at the token service are refused at once and cached statuses are
                // trusted while the stream is healthy (docs/shared-signals.md, "The receiver").
                o.SharedSignals.Delivery = settings.SharedSignals.Delivery;
                o.SharedSignals.PollInterval = settings.SharedSignals.PollInterval ?? o.SharedSignals.PollInterval;
                o.SharedSignals.VerificationInterval = settings.SharedSignals.VerificationInterval ?? o.SharedSignals.VerificationInterval;
                o.SharedSignals.StreamDescription = settings.SharedSignals.StreamDescription ?? o.SharedSignals.StreamDescription;
                sessionCheck?.Invoke(o);
            });
        builder.Services.AddAuthorization();

        // A browser page of another origin may call this API only when it is listed here. The token travels in the
        // Authorization header, never in a cookie, so the policy allows no credentials.
        builder.Services.AddCors(cors => cors.AddPolicy(CorsPolicyName, policy => policy
            .WithOrigins([.. settings.AllowedOrigins])
            .WithMethods("GET")
            // DPoP (RFC 9449 §7): the proof header; the challenge and a server nonce must be readable by the page.
            .WithHeaders("Authorization", "DPoP")
            .WithExposedHeaders("WWW-Authenticate", "DPoP-Nonce")
            .SetPreflightMaxAge(TimeSpan.FromMinutes(10))));

        var app = builder.Build();
        app.UseCors(CorsPolicyName);
        app.UseAuthentication();
        app.UseAuthorization();
        app.MapGet("/orders", (ClaimsPrincipal user) =>
        {
            var subject = user.FindFirst("sub")?.Value ?? string.Empty;
            return Results.Ok(new OrdersResponse(subject, user.FindFirst("client_id")?.Value, [new Order("A-1001", "Lab notebook"), new Order("A-1002", "Pipette tips")]));
        }).RequireAuthorization();
        return app;
    }
}

public sealed record Order(string Id, string Item);

public sealed record OrdersResponse(string User, string? ClientId, IReadOnlyList<Order> Orders);
