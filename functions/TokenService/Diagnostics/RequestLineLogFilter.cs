using Microsoft.Extensions.Logging;

namespace TokenService.Diagnostics;

/// <summary>
/// Turns off ASP.NET Core's request lines ("Request starting HTTP/1.1 POST http://…/events/idp?key=…" and
/// "Request finished …", Information and Debug in category <see cref="Category"/>) for every logger provider,
/// whatever the configuration says: the category is held at Critical. Not "None": hosting creates each request's
/// Activity (and so joins the caller's W3C trace context) only when this category is enabled at least for
/// Critical or a tracer listens, and its Critical lines (a failed start) carry no request. The request lines print
/// the query string, and <c>/events/idp</c> accepts the webhook secret as the query parameter <c>key</c> (docs/api.md, "IdP events", the fallback for subscriptions that cannot set a header): a secret must never
/// reach a log (ASVS V7.1.1, OWASP Logging Cheat Sheet "data to exclude"). Both hosts run ASP.NET Core (the Functions
/// worker through its ASP.NET Core integration), so both get the rule. Request counts and durations remain in the
/// metrics and spans (docs/operations.md).
/// </summary>
public static class RequestLineLogFilter
{
    public const string Category = "Microsoft.AspNetCore.Hosting.Diagnostics";

    /// <summary>
    /// Adds, last, a rule "Critical" for <see cref="Category"/> for every provider that any rule names and for all
    /// providers: the most specific rule wins and, among equally specific ones, the last, so no configured level
    /// (for instance <c>Logging:Console:LogLevel:Microsoft.AspNetCore.Hosting.Diagnostics=Trace</c>) can turn it on.
    /// </summary>
    public static void Apply(LoggerFilterOptions options)
    {
        var providers = options.Rules.Select(rule => rule.ProviderName).Where(name => name is not null).Distinct(StringComparer.Ordinal).ToList();
        options.Rules.Add(new LoggerFilterRule(null, Category, LogLevel.Critical, null));
        foreach (var provider in providers)
        {
            options.Rules.Add(new LoggerFilterRule(provider, Category, LogLevel.Critical, null));
        }
    }
}
