using Microsoft.AspNetCore.Http;

namespace TokenService.Endpoints;

/// <summary>
/// The spa refresh-token cookie (docs/api.md, "`spa` clients: cookie, Origin and CORS"): <c>__Host-refresh_token</c>, HttpOnly, Secure,
/// SameSite=Strict, Path=/, no Domain (the <c>__Host-</c> prefix requires exactly that).
/// </summary>
public static class RefreshTokenCookie
{
    public const string Name = "__Host-refresh_token";

    public static void Set(HttpResponse response, string refreshToken, TimeSpan maxAge) =>
        response.Cookies.Append(Name, refreshToken, Options(maxAge));

    public static void Clear(HttpResponse response) =>
        response.Cookies.Append(Name, string.Empty, Options(TimeSpan.Zero));

    public static string? Read(HttpRequest request) =>
        request.Cookies.TryGetValue(Name, out var value) && !string.IsNullOrEmpty(value) ? value : null;

    private static CookieOptions Options(TimeSpan maxAge) => new()
    {
        HttpOnly = true,
        Secure = true,
        SameSite = SameSiteMode.Strict,
        Path = "/",
        MaxAge = maxAge < TimeSpan.Zero ? TimeSpan.Zero : maxAge,
        IsEssential = true,
    };
}
