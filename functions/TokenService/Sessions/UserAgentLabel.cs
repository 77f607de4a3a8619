namespace TokenService.Sessions;

/// <summary>
/// The browser and operating system of a <c>User-Agent</c> header (RFC 9110 §10.1.5) as a short label a person
/// recognises, "Firefox on Windows", the way the session lists of large identity providers name a session. Only
/// the label is stored with a session, never the header itself: the raw string adds fingerprinting detail (exact
/// versions, device models) and nothing a user needs to tell two sessions apart.
/// <para>
/// A small parser of our own for the major browsers and systems. The header is free text the client chooses, so
/// the label is a hint for the user, never a security decision; an unknown or absent header gives null. Order
/// matters: most browsers claim to be others too (Edge and Opera say "Chrome/", Chrome says "Safari/", everything
/// says "Mozilla/"), so the more specific token is tested first.
/// </para>
/// </summary>
public static class UserAgentLabel
{
    /// <summary>Headers longer than this are not read (no label): no browser sends one, and the scan stays cheap.</summary>
    public const int MaxHeaderLength = 1024;

    private static readonly (string Token, string Name)[] Browsers =
    [
        ("EdgA/", "Edge"),
        ("EdgiOS/", "Edge"),
        ("Edg/", "Edge"),
        ("Edge/", "Edge"),
        ("OPR/", "Opera"),
        ("OPiOS/", "Opera"),
        ("Opera", "Opera"),
        ("SamsungBrowser/", "Samsung Internet"),
        ("Vivaldi/", "Vivaldi"),
        ("YaBrowser/", "Yandex Browser"),
        ("FxiOS/", "Firefox"),
        ("Firefox/", "Firefox"),
        ("CriOS/", "Chrome"),
        ("HeadlessChrome/", "Chrome"),
        ("Chromium/", "Chromium"),
        ("Chrome/", "Chrome"),
        ("Trident/", "Internet Explorer"),
        ("MSIE ", "Internet Explorer"),
    ];

    private static readonly (string Token, string Name)[] Systems =
    [
        ("Windows Phone", "Windows Phone"),
        ("Windows NT", "Windows"),
        ("iPhone", "iOS"),
        ("iPod", "iOS"),
        ("iPad", "iPadOS"),
        ("Android", "Android"),
        ("CrOS", "ChromeOS"),
        ("Mac OS X", "macOS"),
        ("Macintosh", "macOS"),
        ("Ubuntu", "Ubuntu"),
        ("Fedora", "Fedora"),
        ("Linux", "Linux"),
        ("FreeBSD", "FreeBSD"),
    ];

    /// <summary>"Browser on System", or the one of them that is known, or null when neither is.</summary>
    public static string? Describe(string? userAgent)
    {
        if (string.IsNullOrWhiteSpace(userAgent) || userAgent.Length > MaxHeaderLength)
        {
            return null;
        }

        var browser = BrowserOf(userAgent);
        var system = First(Systems, userAgent);
        return (browser, system) switch
        {
            (not null, not null) => $"{browser} on {system}",
            (not null, null) => browser,
            (null, not null) => system,
            _ => null,
        };
    }

    private static string? BrowserOf(string userAgent)
    {
        if (First(Browsers, userAgent) is { } named)
        {
            return named;
        }

        // Safari names itself only by "Safari/" with "Version/", which every WebKit browser above also sends; what is
        // left is Safari. An iOS app's web view sends neither.
        return userAgent.Contains("Safari/", StringComparison.Ordinal) && userAgent.Contains("Version/", StringComparison.Ordinal) ? "Safari" : null;
    }

    private static string? First((string Token, string Name)[] table, string userAgent)
    {
        foreach (var (token, name) in table)
        {
            if (userAgent.Contains(token, StringComparison.Ordinal))
            {
                return name;
            }
        }

        return null;
    }
}
