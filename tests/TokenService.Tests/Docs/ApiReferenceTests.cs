using System.Text.RegularExpressions;
using TokenService.Hosting;
using TokenService.Tests.Infrastructure;
using TokenService.Tests.Tables;

namespace TokenService.Tests.Docs;

/// <summary>
/// docs/api.md is the project's own API reference: it has a heading for every route that either host serves (the
/// core's route table, which the standalone host maps, and the Functions app's HTTP triggers), no route heading
/// for a route neither serves, and no link that leaves the repository other than standard RFC and spec pages.
/// </summary>
public sealed partial class ApiReferenceTests
{
    /// <summary>Hosts of standard RFC and specification pages that docs/api.md may link to.</summary>
    private static readonly HashSet<string> SpecHosts = new(StringComparer.OrdinalIgnoreCase)
    {
        "www.rfc-editor.org", "rfc-editor.org", "datatracker.ietf.org", "tools.ietf.org", "www.iana.org",
        "openid.net", "www.w3.org", "cloudevents.io",
    };

    private static readonly string Root = AzuriteFixture.FindRepositoryRoot();
    private static readonly string DocPath = Path.Combine(Root, "docs", "api.md");

    [Fact]
    public void Every_route_of_the_route_table_has_a_heading_for_each_method()
    {
        var headings = RouteHeadings();
        Assert.NotEmpty(TokenServiceRoutes.All);
        foreach (var route in TokenServiceRoutes.All)
        {
            foreach (var method in DocumentedMethods(route.Methods))
            {
                var expected = $"`{method} /{route.Template}`";
                Assert.True(headings.Any(h => h.Contains(expected, StringComparison.Ordinal)), $"docs/api.md has no heading with {expected} (route {route.Name})");
            }
        }
    }

    [Fact]
    public void Every_http_function_of_the_functions_app_has_a_heading_for_each_method()
    {
        var functions = FunctionsHttpHandler.Functions.Select(f => (f.Name, f.Route, f.Methods)).ToList();
        Assert.True(functions.Count >= TokenServiceRoutes.All.Count, $"only {functions.Count} HTTP functions found");

        var headings = RouteHeadings();
        foreach (var (name, route, methods) in functions)
        {
            Assert.NotEmpty(methods);
            foreach (var method in DocumentedMethods(methods))
            {
                var expected = $"`{method} /{route}`";
                Assert.True(headings.Any(h => h.Contains(expected, StringComparison.Ordinal)), $"docs/api.md has no heading with {expected} (function {name})");
            }
        }
    }

    [Fact]
    public void Every_route_heading_names_a_served_route()
    {
        var served = TokenServiceRoutes.All
            .SelectMany(r => r.Methods.Select(m => $"{m.ToUpperInvariant()} /{r.Template}"))
            .ToHashSet(StringComparer.Ordinal);
        var documented = RouteHeadings().SelectMany(h => HeadingRoute().Matches(h)).Select(m => m.Groups[1].Value).ToList();
        Assert.NotEmpty(documented);
        Assert.All(documented, route => Assert.True(served.Contains(route), $"docs/api.md has a heading for {route}, which neither host serves"));
    }

    [Fact]
    public void Links_stay_in_the_repository_except_standard_specifications()
    {
        var text = File.ReadAllText(DocPath);
        Assert.DoesNotContain("../shared", text, StringComparison.Ordinal);
        Assert.DoesNotContain("CONTRACT.md", text, StringComparison.Ordinal);

        var targets = MarkdownLink().Matches(text).Select(m => m.Groups[1].Value)
            .Concat(AutoLink().Matches(text).Select(m => m.Groups[1].Value))
            .ToList();
        Assert.NotEmpty(targets);
        foreach (var target in targets)
        {
            if (Uri.TryCreate(target, UriKind.Absolute, out var absolute) && absolute.Scheme.Length > 1)
            {
                Assert.True(absolute.Scheme == Uri.UriSchemeHttps && SpecHosts.Contains(absolute.Host), $"docs/api.md links outside the repository: {target}");
                continue;
            }

            var hash = target.IndexOf('#', StringComparison.Ordinal);
            var pathPart = hash >= 0 ? target[..hash] : target;
            var fragment = hash >= 0 ? target[(hash + 1)..] : null;
            var file = pathPart.Length == 0 ? DocPath : Path.GetFullPath(Path.Combine(Path.GetDirectoryName(DocPath)!, Uri.UnescapeDataString(pathPart)));
            var rootWithSeparator = Path.GetFullPath(Root).TrimEnd(Path.DirectorySeparatorChar) + Path.DirectorySeparatorChar;
            Assert.True(file.StartsWith(rootWithSeparator, StringComparison.Ordinal), $"docs/api.md links outside the repository: {target}");
            Assert.True(File.Exists(file) || Directory.Exists(file), $"docs/api.md links to a missing path: {target}");
            if (fragment is not null && file.EndsWith(".md", StringComparison.OrdinalIgnoreCase))
            {
                Assert.True(Anchors(file).Contains(fragment), $"docs/api.md links to a missing heading: {target}");
            }
        }
    }

    private static IEnumerable<string> DocumentedMethods(IEnumerable<string> methods) =>
        methods.Select(m => m.ToUpperInvariant()).Where(m => m is not ("HEAD" or "OPTIONS")).Distinct();

    private static List<string> RouteHeadings() =>
        File.ReadAllLines(DocPath).Where(line => line.StartsWith('#')).ToList();

    /// <summary>GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens.</summary>
    private static HashSet<string> Anchors(string markdownFile)
    {
        var anchors = new HashSet<string>(StringComparer.Ordinal);
        var inFence = false;
        foreach (var line in File.ReadAllLines(markdownFile))
        {
            if (line.StartsWith("```", StringComparison.Ordinal))
            {
                inFence = !inFence;
                continue;
            }

            if (inFence || !line.StartsWith('#'))
            {
                continue;
            }

            var title = line.TrimStart('#').Trim().ToLowerInvariant();
            var slug = new string(title.Where(c => char.IsLetterOrDigit(c) || c is ' ' or '-' or '_').ToArray()).Replace(' ', '-');
            var candidate = slug;
            for (var n = 1; !anchors.Add(candidate); n++)
            {
                candidate = $"{slug}-{n}";
            }
        }

        return anchors;
    }

    [GeneratedRegex(@"\]\(([^)\s]+)\)")]
    private static partial Regex MarkdownLink();

    [GeneratedRegex(@"<([a-zA-Z][a-zA-Z0-9+.-]*://[^>\s]+)>")]
    private static partial Regex AutoLink();

    [GeneratedRegex(@"`((?:GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS) /[^`\s]*)`")]
    private static partial Regex HeadingRoute();
}
