using System.Text.Json;
using System.Text.RegularExpressions;
using TokenService.Hosting;
using TokenService.Tests.Tables;

namespace TokenService.Tests.Functions;

/// <summary>
/// What the Functions host indexes, read from the Release output the Worker SDK produced: functions.metadata
/// holds every route of the core's route table with its methods, anonymous (the endpoints authenticate callers
/// themselves), none under <c>admin/</c> or <c>runtime/</c> (the host refuses them), the Event Grid trigger and
/// the three timers; extensions.json lists the host-side Event Grid extension that our stand-in binding names.
/// </summary>
[Collection(FunctionsAppOutputCollection.Name)]
public sealed partial class FunctionsMetadataTests(FunctionsAppOutput output)
{
    [Fact]
    public void Every_route_of_the_route_table_is_an_http_function_with_the_same_methods()
    {
        var functions = HttpFunctions();
        foreach (var route in TokenServiceRoutes.All)
        {
            Assert.True(functions.TryGetValue(route.Name, out var function), $"functions.metadata has no function {route.Name}");
            Assert.Equal(route.Template, function.Route);
            Assert.Equal(route.Methods.Select(m => m.ToLowerInvariant()).Order(), function.Methods.Order());
            Assert.Equal("Anonymous", function.AuthLevel);
        }

        Assert.Equal(TokenServiceRoutes.All.Select(r => r.Name).Order(), functions.Keys.Order());
    }

    [Fact]
    public void No_route_starts_with_a_prefix_the_functions_host_reserves()
    {
        var routes = HttpFunctions().Values.Select(f => f.Route).Concat(TokenServiceRoutes.All.Select(r => r.Template)).ToList();
        Assert.NotEmpty(routes);
        Assert.All(routes, route =>
        {
            Assert.False(route.StartsWith("admin", StringComparison.OrdinalIgnoreCase), route);
            Assert.False(route.StartsWith("runtime", StringComparison.OrdinalIgnoreCase), route);
        });
    }

    [Fact]
    public void Every_route_of_the_contract_is_in_the_route_table()
    {
        var contract = File.ReadAllText(Path.Combine(AzuriteFixture.FindRepositoryRoot(), "..", "shared", "CONTRACT.md"));
        var section = contract[contract.IndexOf("## 2. HTTP endpoints", StringComparison.Ordinal)..contract.IndexOf("## 3. Tokens", StringComparison.Ordinal)];
        var contractRoutes = ContractRoute().Matches(section).Select(m => (Method: m.Groups[1].Value, Path: m.Groups[2].Value.TrimStart('/'))).Distinct().ToList();
        Assert.True(contractRoutes.Count >= 12, "CONTRACT §2 routes were not found");
        foreach (var (method, path) in contractRoutes)
        {

            var route = TokenServiceRoutes.All.FirstOrDefault(r => r.Template == path);
            Assert.True(route is not null, $"CONTRACT §2 route {method} /{path} is not served");
            Assert.Contains(method, route.Methods);
        }
    }

    [Fact]
    public void The_event_grid_trigger_and_the_timers_are_indexed()
    {
        var all = Metadata();
        var idpEvents = Binding(all, "IdpEvents");
        Assert.Equal("eventGridTrigger", idpEvents.GetProperty("type").GetString());
        Assert.Equal("In", idpEvents.GetProperty("direction").GetString());
        Assert.Equal("eventJson", idpEvents.GetProperty("name").GetString());

        var rotation = Binding(all, "KeyRotationCheck");
        Assert.Equal("timerTrigger", rotation.GetProperty("type").GetString());
        Assert.Equal("0 0 3 * * *", rotation.GetProperty("schedule").GetString()); // daily (CONTRACT §4)
        var cleanup = Binding(all, "ExpiredStateCleanup");
        Assert.Equal("timerTrigger", cleanup.GetProperty("type").GetString());
        Assert.Equal("0 17 * * * *", cleanup.GetProperty("schedule").GetString()); // hourly
        var graphSubscription = Binding(all, "GraphSubscriptionRenewal");
        Assert.Equal("timerTrigger", graphSubscription.GetProperty("type").GetString());
        Assert.Equal("0 41 4 * * *", graphSubscription.GetProperty("schedule").GetString()); // daily
        Assert.True(graphSubscription.GetProperty("runOnStartup").GetBoolean()); // and at start: idempotent
        var ssfPush = Binding(all, "SharedSignalsPushDelivery");
        Assert.Equal("timerTrigger", ssfPush.GetProperty("type").GetString());
        Assert.Equal("0 * * * * *", ssfPush.GetProperty("schedule").GetString()); // drains the push outbox each minute
    }

    [Fact]
    public void Extensions_json_lists_the_host_event_grid_extension_and_ships_it()
    {
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(output.Path, "extensions.json")));
        var eventGrid = json.RootElement.GetProperty("extensions").EnumerateArray().Single(e => e.GetProperty("name").GetString() == "EventGrid");
        Assert.Contains("Microsoft.Azure.WebJobs.Extensions.EventGrid, Version=3.3.0.0", eventGrid.GetProperty("typeName").GetString(), StringComparison.Ordinal);
        var hint = eventGrid.GetProperty("hintPath").GetString()!;
        Assert.True(File.Exists(Path.Combine(output.Path, hint)), $"{hint} is not in the output");
    }

    [Fact]
    public void The_output_folder_is_a_function_app_root_that_core_tools_can_start_without_building()
    {
        // Core Tools: the app root is the nearest folder up from the current one holding host.json
        // (ScriptHostHelpers.GetFunctionAppRootDirectory), local.settings.json is read from the nearest folder holding
        // host.json or local.settings.json (SecretsManager.AppSettingsFilePath), and `func start` builds only where
        // the folder holds exactly one project file (DotnetHelpers.CanDotnetBuild); --no-build skips that.
        foreach (var file in new[] { "host.json", "functions.metadata", "worker.config.json", "extensions.json", "TokenFunctions.dll", "local.settings.json" })
        {
            Assert.True(File.Exists(Path.Combine(output.Path, file)), $"{file} is missing from {output.Path}");
        }

        Assert.Empty(Directory.GetFiles(output.Path, "*.csproj"));
        using var worker = JsonDocument.Parse(File.ReadAllText(Path.Combine(output.Path, "worker.config.json")));
        Assert.Equal("TokenFunctions.dll", worker.RootElement.GetProperty("description").GetProperty("defaultWorkerPath").GetString());
        Assert.Equal(File.ReadAllText(Path.Combine(AzuriteFixture.FindRepositoryRoot(), "host.json")), File.ReadAllText(Path.Combine(output.Path, "host.json")));
        var settings = Infrastructure.LocalSettings.Read(Path.Combine(output.Path, "local.settings.json"));
        Assert.Equal("dotnet-isolated", settings["FUNCTIONS_WORKER_RUNTIME"]);
    }

    private Dictionary<string, (string Route, string[] Methods, string AuthLevel)> HttpFunctions()
    {
        var result = new Dictionary<string, (string, string[], string)>(StringComparer.Ordinal);
        foreach (var function in Metadata().EnumerateArray())
        {
            var trigger = function.GetProperty("bindings").EnumerateArray().FirstOrDefault(b => b.GetProperty("type").GetString() == "httpTrigger");
            if (trigger.ValueKind == JsonValueKind.Object)
            {
                result[function.GetProperty("name").GetString()!] = (
                    trigger.GetProperty("route").GetString()!,
                    trigger.GetProperty("methods").EnumerateArray().Select(m => m.GetString()!.ToLowerInvariant()).ToArray(),
                    trigger.GetProperty("authLevel").GetString()!);
            }
        }

        return result;
    }

    private JsonElement Metadata()
    {
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(output.Path, "functions.metadata")));
        return json.RootElement.Clone();
    }

    private static JsonElement Binding(JsonElement all, string function) =>
        all.EnumerateArray().Single(f => f.GetProperty("name").GetString() == function).GetProperty("bindings").EnumerateArray().Single();

    [GeneratedRegex(@"`(GET|POST|DELETE|PUT|PATCH) (/[^`\s]+)")]
    private static partial Regex ContractRoute();
}
