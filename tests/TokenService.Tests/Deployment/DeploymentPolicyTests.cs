using System.Text.Json;
using System.Text.RegularExpressions;

namespace TokenService.Tests.Deployment;

/// <summary>
/// A deployment that holds in every region it allows and under the policies institutions commonly set: the compiled
/// template is checked for each rule, as the other infrastructure tests do.
/// </summary>
public sealed partial class InfrastructureTests
{
    /// <summary>azd's substitution of <c>${NAME=default}</c> in main.parameters.json: an override, else the default.</summary>
    private static string AzdSubstitute(string parameters, IReadOnlyDictionary<string, string>? values = null) =>
        AzdVariable().Replace(parameters, m => values is not null && values.TryGetValue(m.Groups[1].Value, out var value) ? value : m.Groups[2].Value);

    [GeneratedRegex(@"\$\{([A-Z_]+)=([^}]*)\}")]
    private static partial Regex AzdVariable();

    private static JsonElement Module(JsonElement main, string name) =>
        OfType(main, "Microsoft.Resources/deployments").Single(d => d.Resource.GetProperty("name").GetString() == name).Resource;

    [Fact]
    public void The_location_is_limited_to_flex_consumption_regions_and_storage_redundancy_defaults_to_one_every_region_has()
    {
        using var template = Compile("main.bicep");
        var main = template.RootElement;
        var allowed = main.GetProperty("parameters").GetProperty("location").GetProperty("allowedValues").EnumerateArray().Select(v => v.GetString()).ToList();
        Assert.Contains("westeurope", allowed); // README's example
        Assert.Contains("eastus", allowed);
        Assert.DoesNotContain("brazilsoutheast", allowed); // no Flex Consumption there
        Assert.Equal("location", main.GetProperty("parameters").GetProperty("location").GetProperty("metadata").GetProperty("azd").GetProperty("type").GetString());

        // ZRS exists only where the region has zones; the default is LRS, which every region has.
        var redundancy = main.GetProperty("parameters").GetProperty("storageRedundancy");
        Assert.Equal("Standard_LRS", redundancy.GetProperty("defaultValue").GetString());
        Assert.Contains("Standard_ZRS", redundancy.GetProperty("allowedValues").EnumerateArray().Select(v => v.GetString()));
        var account = Assert.Single(OfType(main, "Microsoft.Storage/storageAccounts"), a => a.Resource.TryGetProperty("sku", out _)).Resource;
        Assert.Equal("[parameters('skuName')]", account.GetProperty("sku").GetProperty("name").GetString());
        Assert.Equal("[parameters('storageRedundancy')]", Module(main, "storage").GetProperty("properties").GetProperty("parameters").GetProperty("skuName").GetProperty("value").GetString());
        Assert.DoesNotContain("Standard_ZRS'", account.GetRawText(), StringComparison.Ordinal);
    }

    [Fact]
    public void The_flex_site_sets_no_ftps_state_and_turns_off_ftp_and_scm_basic_publishing_credentials()
    {
        using var template = Compile("main.bicep");
        var main = template.RootElement;
        var site = Assert.Single(OfType(main, "Microsoft.Web/sites")).Resource;
        Assert.False(site.GetProperty("properties").GetProperty("siteConfig").TryGetProperty("ftpsState", out _), "ftpsState is unsupported on Flex Consumption");
        var policies = OfType(main, "Microsoft.Web/sites/basicPublishingCredentialsPolicies").Select(p => p.Resource).ToList();
        Assert.Equal(["ftp", "scm"], policies.Select(p => p.GetProperty("name").GetString()!.Split(',').Last().Trim(' ', '\'', ')', ']')).Order());
        Assert.All(policies, p => Assert.False(p.GetProperty("properties").GetProperty("allow").GetBoolean()));
    }

    [Fact]
    public void The_signing_vault_count_stops_at_five_where_the_subscription_wide_key_vault_limit_stops_adding_throughput()
    {
        using var template = Compile("main.bicep");
        var count = template.RootElement.GetProperty("parameters").GetProperty("signingVaultCount");
        Assert.Equal(5, count.GetProperty("maxValue").GetInt32());
        Assert.Contains("five", count.GetProperty("metadata").GetProperty("description").GetString()!, StringComparison.Ordinal);
        Assert.Contains("five vaults", File.ReadAllText(Path.Combine(Root, "docs", "capacity.md")), StringComparison.Ordinal);
    }

    [Fact]
    public void Key_vault_audit_events_and_event_grid_delivery_failures_go_to_the_log_analytics_workspace()
    {
        using var template = Compile("main.bicep");
        var main = template.RootElement;
        var diagnostics = OfType(main, "Microsoft.Insights/diagnosticSettings").ToList();
        string Categories((JsonElement Resource, JsonElement Template) d) =>
            string.Join(",", d.Resource.GetProperty("properties").GetProperty("logs").EnumerateArray().Select(l => l.GetProperty("category").GetString()));

        // The secrets vault and every extra signing vault.
        var vaults = diagnostics.Where(d => d.Resource.GetProperty("scope").GetString()!.Contains("Microsoft.KeyVault/vaults", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, vaults.Count);
        Assert.All(vaults, v => Assert.Equal("AuditEvent", Categories(v)));
        Assert.All(vaults, v => Assert.Equal("[parameters('workspaceId')]", v.Resource.GetProperty("properties").GetProperty("workspaceId").GetString()));
        var topic = Assert.Single(diagnostics, d => d.Resource.GetProperty("scope").GetString()!.Contains("Microsoft.EventGrid/topics", StringComparison.Ordinal));
        Assert.Equal("DeliveryFailures,PublishFailures", Categories(topic));
        foreach (var module in new[] { "keyvault", "eventgrid" })
        {
            Assert.Contains("'monitoring'", Module(main, module).GetProperty("properties").GetProperty("parameters").GetProperty("workspaceId").GetProperty("value").GetString()!, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Telemetry_cost_is_bounded_by_a_daily_cap_and_trace_sampling_and_host_json_has_no_application_insights_only_levels()
    {
        using var template = Compile("main.bicep");
        var main = template.RootElement;
        Assert.Equal(2, main.GetProperty("parameters").GetProperty("logDailyCapGb").GetProperty("defaultValue").GetInt32());
        var workspace = Assert.Single(OfType(main, "Microsoft.OperationalInsights/workspaces")).Resource;
        Assert.Equal("[parameters('dailyCapGb')]", workspace.GetProperty("properties").GetProperty("workspaceCapping").GetProperty("dailyQuotaGb").GetString());

        var settings = AppSettings(main);
        Assert.Equal("microsoft.fixed_percentage", settings.GetProperty("OTEL_TRACES_SAMPLER").GetString());
        Assert.Equal("[parameters('traceSamplingRatio')]", settings.GetProperty("OTEL_TRACES_SAMPLER_ARG").GetString());
        var ratio = main.GetProperty("parameters").GetProperty("traceSamplingRatio").GetProperty("defaultValue").GetString()!;
        Assert.InRange(double.Parse(ratio, System.Globalization.CultureInfo.InvariantCulture), 0.001, 1);

        // In OpenTelemetry mode the host sends no Application Insights request or aggregated telemetry, so the
        // categories that only filter those (Host.Results, Host.Aggregator) would be settings that do nothing.
        using var host = JsonDocument.Parse(File.ReadAllText(Path.Combine(Root, "host.json")));
        Assert.Equal("OpenTelemetry", host.RootElement.GetProperty("telemetryMode").GetString());
        var levels = host.RootElement.GetProperty("logging").GetProperty("logLevel").EnumerateObject().Select(p => p.Name).ToList();
        Assert.DoesNotContain("Host.Results", levels);
        Assert.DoesNotContain("Host.Aggregator", levels);
    }

    [Fact]
    public void Always_ready_http_instances_are_a_parameter_that_is_off_by_default()
    {
        using var template = Compile("main.bicep");
        var main = template.RootElement;
        Assert.Equal(0, main.GetProperty("parameters").GetProperty("httpAlwaysReadyInstances").GetProperty("defaultValue").GetInt32());
        var site = Assert.Single(OfType(main, "Microsoft.Web/sites")).Resource;
        var alwaysReady = site.GetProperty("properties").GetProperty("functionAppConfig").GetProperty("scaleAndConcurrency").GetProperty("alwaysReady").GetString()!;
        Assert.Contains("'name', 'http'", alwaysReady, StringComparison.Ordinal);
        Assert.Contains("parameters('httpAlwaysReadyInstances')", alwaysReady, StringComparison.Ordinal);
    }

    [Fact]
    public void Network_isolation_adds_a_vnet_and_private_endpoints_for_every_vault_storage_service_and_the_topic_and_turns_public_access_off()
    {
        using var template = Compile("main.bicep");
        var main = template.RootElement;
        Assert.False(main.GetProperty("parameters").GetProperty("networkIsolation").GetProperty("defaultValue").GetBoolean());
        var network = Module(main, "network");
        Assert.Equal("[parameters('networkIsolation')]", network.GetProperty("condition").GetString());
        var nested = network.GetProperty("properties").GetProperty("template");
        var subnets = Assert.Single(OfType(nested, "Microsoft.Network/virtualNetworks")).Resource.GetProperty("properties").GetProperty("subnets");
        Assert.Contains("Microsoft.App/environments", subnets.GetRawText(), StringComparison.Ordinal);

        var endpoints = OfType(main, "Microsoft.Resources/deployments").Single(d => d.Resource.TryGetProperty("copy", out var copy) && copy.GetProperty("name").GetString() == "endpoints").Resource;
        Assert.Equal("[parameters('networkIsolation')]", endpoints.GetProperty("condition").GetString());
        var list = main.GetProperty("variables").GetProperty("privateEndpoints").GetString()!;
        foreach (var group in new[] { "'vault'", "'blob'", "'queue'", "'table'", "'topic'" })
        {
            Assert.Contains(group, list, StringComparison.Ordinal);
        }

        Assert.Contains("variables('vaultNames')", list, StringComparison.Ordinal); // one endpoint per signing vault

        // Public network access follows the parameter on the vaults and the topic; storage denies public networks but
        // lets Event Grid (a trusted service) write dead letters.
        foreach (var type in new[] { "Microsoft.KeyVault/vaults", "Microsoft.EventGrid/topics" })
        {
            Assert.All(OfType(main, type), r => Assert.Equal("[if(parameters('networkIsolation'), 'Disabled', 'Enabled')]", r.Resource.GetProperty("properties").GetProperty("publicNetworkAccess").GetString()));
        }

        var account = Assert.Single(OfType(main, "Microsoft.Storage/storageAccounts"), a => a.Resource.TryGetProperty("sku", out _)).Resource;
        Assert.Contains("'Deny'", account.GetProperty("properties").GetProperty("networkAcls").GetString()!, StringComparison.Ordinal);
        Assert.Contains("AzureServices", account.GetProperty("properties").GetProperty("networkAcls").GetString()!, StringComparison.Ordinal);
        var site = Assert.Single(OfType(main, "Microsoft.Web/sites")).Resource;
        Assert.Contains("virtualNetworkSubnetId", site.GetProperty("properties").GetRawText(), StringComparison.Ordinal);

        // azd passes every new parameter from the environment, with a default that keeps the file valid JSON.
        var parameters = File.ReadAllText(Path.Combine(Root, "infra", "main.parameters.json"));
        using var substituted = JsonDocument.Parse(AzdSubstitute(parameters, new Dictionary<string, string> { ["NETWORK_ISOLATION"] = "true" }));
        var values = substituted.RootElement.GetProperty("parameters");
        Assert.True(values.GetProperty("networkIsolation").GetProperty("value").GetBoolean());
        Assert.Equal("Standard_LRS", values.GetProperty("storageRedundancy").GetProperty("value").GetString());
        Assert.Equal(0, values.GetProperty("httpAlwaysReadyInstances").GetProperty("value").GetInt32());
    }

    /// <summary>
    /// With a partner topic named (IDP_PARTNER_TOPIC_NAME), the template sets the Graph subscription's notification URL
    /// in the form Graph documents for Event Grid partner topics and a generated clientState as a Key Vault reference,
    /// and the app's own start-up validation accepts them; without one it sets neither, so that no hand-set URL is
    /// overwritten and no subscription is made.
    /// </summary>
    [Fact]
    public void The_graph_subscription_is_wired_to_the_partner_topic_when_one_is_named()
    {
        using var template = Compile("main.bicep");
        var main = template.RootElement;
        var parameters = main.GetProperty("parameters");
        Assert.Equal(string.Empty, parameters.GetProperty("idpPartnerTopicName").GetProperty("defaultValue").GetString());
        var clientState = parameters.GetProperty("graphClientState");
        Assert.Equal("securestring", clientState.GetProperty("type").GetString());
        Assert.Equal("generate", clientState.GetProperty("metadata").GetProperty("azd").GetProperty("type").GetString());
        using var azdParameters = JsonDocument.Parse(AzdSubstitute(File.ReadAllText(Path.Combine(Root, "infra", "main.parameters.json")), new Dictionary<string, string> { ["IDP_PARTNER_TOPIC_NAME"] = "graph-users" }));
        Assert.Equal("graph-users", azdParameters.RootElement.GetProperty("parameters").GetProperty("idpPartnerTopicName").GetProperty("value").GetString());

        var graphSettings = OfType(main, "Microsoft.Resources/deployments")
            .Select(d => d.Resource.GetProperty("properties"))
            .Where(p => p.TryGetProperty("parameters", out var ps) && ps.TryGetProperty("graphSettings", out _))
            .Select(p => p.GetProperty("parameters").GetProperty("graphSettings").GetString()!)
            .Single();
        Assert.StartsWith("[if(empty(parameters('graphPartnerTopicName')), createObject('value', createObject()),", graphSettings, StringComparison.Ordinal);
        Assert.Contains("'Events__GraphClientState', format('@Microsoft.KeyVault(SecretUri={0})', parameters('graphClientStateReferenceUri'))", graphSettings, StringComparison.Ordinal);
        var format = Regex.Match(graphSettings, @"'Events__GraphSubscription__NotificationUrl', format\('(?<f>[^']*)', subscription\(\).subscriptionId, resourceGroup\(\).name, parameters\('graphPartnerTopicName'\), parameters\('location'\)\)");
        Assert.True(format.Success, graphSettings);

        // Filled as ARM fills it: the four query parameters Graph requires for an Event Grid partner topic, and a URL
        // the app's start-up validation accepts.
        var url = string.Format(System.Globalization.CultureInfo.InvariantCulture, format.Groups["f"].Value, "00000000-0000-0000-0000-000000000001", "rg-tokens", "graph-users", "westeurope");
        Assert.StartsWith("EventGrid:?", url, StringComparison.Ordinal);
        var query = System.Web.HttpUtility.ParseQueryString(url["EventGrid:?".Length..]);
        Assert.Equal(new string?[] { "azuresubscriptionid", "resourcegroup", "partnertopic", "location" }, query.AllKeys);
        Assert.Equal("graph-users", query["partnertopic"]);
        var events = new TokenService.Configuration.EventsOptions { WebhookSecret = "0123456789abcdef0123", GraphEndpoint = "https://graph.microsoft.com", GraphClientState = new string('c', 48) };
        events.GraphSubscription.NotificationUrl = url;
        var environment = new Microsoft.Extensions.Hosting.Internal.HostingEnvironment { EnvironmentName = "Production" };
        var result = new TokenService.Configuration.EventsOptionsValidator(environment).Validate(null, events);
        Assert.True(result.Succeeded, result.FailureMessage);
    }

    [Fact]
    public void The_graph_endpoint_follows_the_cloud_deployed_to()
    {
        using var template = Compile("main.bicep");
        var settings = AppSettings(template.RootElement);
        var graph = settings.GetProperty("Events__GraphEndpoint").GetString()!;
        Assert.Contains("environment().name", graph + template.RootElement.GetRawText(), StringComparison.Ordinal);
        Assert.Contains("https://graph.microsoft.us", template.RootElement.GetRawText(), StringComparison.Ordinal);
        Assert.Contains("https://microsoftgraph.chinacloudapi.cn", template.RootElement.GetRawText(), StringComparison.Ordinal);
    }

    /// <summary>
    /// The workbook azd deploys parses, and every query reads something the service emits: each <c>tokenservice.*</c>
    /// metric it names is declared in the code, each log query reads the audit trail's messages or Key Vault's
    /// AuditEvent that the template routes to the workspace.
    /// </summary>
    [Fact]
    public void The_workbook_deployed_with_azd_parses_and_every_query_names_a_metric_or_log_the_service_emits()
    {
        using var template = Compile("main.bicep");
        var (workbook, moduleTemplate) = Assert.Single(OfType(template.RootElement, "Microsoft.Insights/workbooks"));
        // loadTextContent compiles to a template variable holding the file's text.
        var serialized = Resolve(workbook.GetProperty("properties").GetProperty("serializedData"), moduleTemplate).GetString()!;
        Assert.Equal(File.ReadAllText(Path.Combine(Root, "infra", "workbooks", "token-service.workbook.json")), serialized);

        using var document = JsonDocument.Parse(serialized);
        var queries = document.RootElement.GetProperty("items").EnumerateArray()
            .Where(i => i.GetProperty("type").GetInt32() == 3)
            .Select(i => i.GetProperty("content").GetProperty("query").GetString()!)
            .ToList();
        Assert.True(queries.Count >= 8, "tokens, reuse, sessions, keys, vault, IdP events, dependencies, audit");

        var source = string.Join('\n', Directory.EnumerateFiles(Path.Combine(Root, "functions"), "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
            .Select(File.ReadAllText));
        foreach (var query in queries)
        {
            var metrics = MetricName().Matches(query).Select(m => m.Groups[1].Value).ToList();
            foreach (var metric in metrics)
            {
                Assert.Contains('"' + metric + '"', source, StringComparison.Ordinal);
            }

            var readsAudit = query.Contains("AppTraces", StringComparison.Ordinal) && query.Contains("'Audit '", StringComparison.Ordinal);
            var readsVaultAudit = query.Contains("AzureDiagnostics", StringComparison.Ordinal) && query.Contains("'AuditEvent'", StringComparison.Ordinal);
            Assert.True(metrics.Count > 0 || readsAudit || readsVaultAudit, "a query that reads nothing the service emits: " + query);
        }

        Assert.Contains("Message = \"Audit {AuditEvent}:\"", source, StringComparison.Ordinal);
    }

    [GeneratedRegex(@"'(tokenservice\.[a-z0-9_.]+)'")]
    private static partial Regex MetricName();
}
