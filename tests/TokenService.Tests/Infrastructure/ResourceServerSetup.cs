using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.Extensions.DependencyInjection;
using TokenService.Validation;

namespace TokenService.Tests.Infrastructure;

/// <summary>A resource server as an API developer writes it: JwtBearer pointed at the token service, plus the session check.</summary>
public static class ResourceServerSetup
{
    public const string Authority = "https://tokens.test.example";

    /// <summary>The origin the test APIs are reached by (required outside Development): DPoP proofs name it in htu.</summary>
    public static readonly Uri PublicOrigin = new("https://orders.test.example");

    public static AuthenticationBuilder AddTestResourceServer(
        this IServiceCollection services, string audience, HttpMessageHandler backchannel, TimeSpan? statusCache = null, TimeProvider? time = null) =>
        services.AddAuthentication(JwtBearerDefaults.AuthenticationScheme)
            .AddJwtBearer(o =>
            {
                o.Authority = Authority;
                o.Audience = audience;
                o.MapInboundClaims = false;
                o.BackchannelHttpHandler = backchannel;
                o.TokenValidationParameters.ValidTypes = ["at+jwt"];
                o.TokenValidationParameters.ValidAlgorithms = ["RS256", "PS256", "ES256"];
                o.TokenValidationParameters.ClockSkew = TimeSpan.FromSeconds(30);
                if (time is not null)
                {
                    o.TimeProvider = time;
                }
            })
            .AddTokenServiceSessionCheck(o =>
            {
                o.ClientId = "api";
                o.ClientSecret = TokenServiceTestHost.ApiSecret;
                o.PublicOrigin = PublicOrigin;
                if (statusCache is { } duration)
                {
                    o.StatusCacheDuration = duration;
                }
            });
}
