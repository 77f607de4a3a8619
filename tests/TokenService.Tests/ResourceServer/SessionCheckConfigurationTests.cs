using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using TokenService.Validation;

namespace TokenService.Tests.ResourceServer;

/// <summary>The session check refuses configurations in which it could not run, instead of letting tokens through unchecked.</summary>
public sealed class SessionCheckConfigurationTests
{
    private static ServiceProvider Build(Action<JwtBearerOptions> bearer, Action<SessionCheckOptions> check)
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddAuthentication(JwtBearerDefaults.AuthenticationScheme)
            .AddJwtBearer(o =>
            {
                o.Authority = "https://tokens.test.example";
                o.Audience = "api://orders";
                bearer(o);
            })
            .AddTokenServiceSessionCheck(o =>
            {
                o.PublicOrigin = new Uri("https://orders.test.example");
                check(o);
            });
        return services.BuildServiceProvider();
    }

    [Fact]
    public void Events_taken_from_dependency_injection_are_refused_because_the_check_would_never_run()
    {
        using var services = Build(o => o.EventsType = typeof(JwtBearerEvents), o => { o.ClientId = "api"; o.ClientSecret = "s"; });
        var error = Assert.Throws<InvalidOperationException>(() => services.GetRequiredService<IOptionsMonitor<JwtBearerOptions>>().Get(JwtBearerDefaults.AuthenticationScheme));
        Assert.Contains("EventsType", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Missing_introspection_credentials_are_refused()
    {
        using var services = Build(_ => { }, o => o.ClientId = "api");
        Assert.Throws<OptionsValidationException>(() => services.GetRequiredService<IOptionsMonitor<SessionCheckOptions>>().Get(JwtBearerDefaults.AuthenticationScheme));
    }

    [Fact]
    public void The_token_services_profile_fills_what_the_scheme_left_at_identitymodels_defaults_and_keeps_the_rest()
    {
        using var services = Build(o => o.TokenValidationParameters.ValidAlgorithms = ["ES256"], o => { o.ClientId = "api"; o.ClientSecret = "s"; });
        var options = services.GetRequiredService<IOptionsMonitor<JwtBearerOptions>>().Get(JwtBearerDefaults.AuthenticationScheme);
        Assert.Equal(["at+jwt", "application/at+jwt"], options.TokenValidationParameters.ValidTypes);
        Assert.Equal(["ES256"], options.TokenValidationParameters.ValidAlgorithms);
        Assert.Equal("https://tokens.test.example", options.TokenValidationParameters.ValidIssuer);
        Assert.NotNull(options.TokenValidationParameters.LifetimeValidator);
    }

    [Fact]
    public void The_algorithm_is_bound_to_the_key_and_to_the_allow_list()
    {
        using var services = Build(_ => { }, o => { o.ClientId = "api"; o.ClientSecret = "s"; });
        var parameters = services.GetRequiredService<IOptionsMonitor<JwtBearerOptions>>().Get(JwtBearerDefaults.AuthenticationScheme).TokenValidationParameters;
        using var rsa = System.Security.Cryptography.RSA.Create(2048);
        var rsaParameters = rsa.ExportParameters(false);
        var bound = new Microsoft.IdentityModel.Tokens.JsonWebKey
        {
            Kty = "RSA", Alg = "RS256", N = Microsoft.IdentityModel.Tokens.Base64UrlEncoder.Encode(rsaParameters.Modulus), E = Microsoft.IdentityModel.Tokens.Base64UrlEncoder.Encode(rsaParameters.Exponent),
        };
        var unbound = new Microsoft.IdentityModel.Tokens.JsonWebKey { Kty = "RSA", N = bound.N, E = bound.E };
        Assert.True(parameters.AlgorithmValidator("RS256", bound, null, parameters));
        Assert.False(parameters.AlgorithmValidator("PS256", bound, null, parameters)); // the JWK says RS256
        Assert.True(parameters.AlgorithmValidator("PS256", unbound, null, parameters));
        Assert.False(parameters.AlgorithmValidator("ES256", unbound, null, parameters)); // not an RSA algorithm
        Assert.False(parameters.AlgorithmValidator("RS512", unbound, null, parameters)); // not in the allow-list
        Assert.False(parameters.AlgorithmValidator("HS256", unbound, null, parameters));
    }

    [Fact]
    public void Push_delivery_without_a_public_origin_or_with_a_relative_push_path_is_refused()
    {
        using var noOrigin = Build(_ => { }, o =>
        {
            o.ClientId = "api";
            o.ClientSecret = "s";
            o.PublicOrigin = null;
            o.SharedSignals.Delivery = SharedSignalsDelivery.Push;
        });
        Assert.Throws<OptionsValidationException>(() => noOrigin.GetRequiredService<IOptionsMonitor<SessionCheckOptions>>().Get(JwtBearerDefaults.AuthenticationScheme));
        using var relative = Build(_ => { }, o =>
        {
            o.ClientId = "api";
            o.ClientSecret = "s";
            o.SharedSignals.Delivery = SharedSignalsDelivery.Push;
            o.SharedSignals.PushPath = "ssf/events";
        });
        Assert.Throws<OptionsValidationException>(() => relative.GetRequiredService<IOptionsMonitor<SessionCheckOptions>>().Get(JwtBearerDefaults.AuthenticationScheme));
        using var tooFast = Build(_ => { }, o =>
        {
            o.ClientId = "api";
            o.ClientSecret = "s";
            o.SharedSignals.Delivery = SharedSignalsDelivery.Poll;
            o.SharedSignals.PollInterval = TimeSpan.FromMilliseconds(10);
        });
        Assert.Throws<OptionsValidationException>(() => tooFast.GetRequiredService<IOptionsMonitor<SessionCheckOptions>>().Get(JwtBearerDefaults.AuthenticationScheme));
    }
}
