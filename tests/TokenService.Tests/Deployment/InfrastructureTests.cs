using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;
using TokenService.Tests.Tables;

namespace TokenService.Tests.Deployment;

/// <summary>
/// infra/main.bicep and infra/eventsubscriptions.bicep compile with the real Bicep compiler and lint clean, and the
/// compiled templates hold the resources, settings and least-privilege roles the deployment relies on. The azd hook
/// scripts run against a fake <c>az</c> that records every call.
/// </summary>
public sealed partial class InfrastructureTests
{
    private const string KeyVaultSecretsUser = "4633458b-17de-408a-b874-0445c86b69e6";
    private const string StorageBlobDataContributor = "ba92f5b4-2d11-453d-a403-e96b0029c9fe";
    private const string EventGridDataSender = "d5a91429-5739-47e2-a06b-3470a27159e7";
    private const string GraphAppId = "00000003-0000-0000-c000-000000000000";
    private const string UserReadAll = "df021288-bdef-4463-88db-98f22de89214";

    private static readonly string Root = AzuriteFixture.FindRepositoryRoot();

    private static string BicepPath()
    {
        var packages = Environment.GetEnvironmentVariable("NUGET_PACKAGES") ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        var path = Path.Combine(packages, "azure.bicep.commandline.linux-x64", "0.49.2", "tools", "bicep");
        Assert.True(File.Exists(path), $"Bicep compiler not restored at {path}: run dotnet restore.");
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, File.GetUnixFileMode(path) | UnixFileMode.UserExecute);
        }

        return path;
    }

    private static (int ExitCode, string Output, string Errors) Bicep(params string[] args)
    {
        var start = new ProcessStartInfo(BicepPath()) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = Path.Combine(Root, "infra") };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        Assert.True(process.WaitForExit(120_000), "bicep did not finish in 2 minutes");
        return (process.ExitCode, output.Result, errors.Result);
    }

    private static JsonDocument Compile(string file)
    {
        var build = Bicep("build", file, "--stdout");
        Assert.True(build.ExitCode == 0, build.Errors);
        return JsonDocument.Parse(build.Output);
    }

    /// <summary>Every resource of a template and of the templates nested in it (modules), with its template.</summary>
    private static IEnumerable<(JsonElement Resource, JsonElement Template)> Resources(JsonElement template)
    {
        if (!template.TryGetProperty("resources", out var resources) || resources.ValueKind != JsonValueKind.Array)
        {
            yield break;
        }

        foreach (var resource in resources.EnumerateArray())
        {
            yield return (resource, template);
            if (resource.TryGetProperty("properties", out var properties) && properties.ValueKind == JsonValueKind.Object
                && properties.TryGetProperty("template", out var nested))
            {
                foreach (var inner in Resources(nested))
                {
                    yield return inner;
                }
            }
        }
    }

    private static IEnumerable<(JsonElement Resource, JsonElement Template)> OfType(JsonElement template, string type) =>
        Resources(template).Where(r => r.Resource.GetProperty("type").GetString() == type);

    /// <summary>A template expression <c>[variables('x')]</c> resolved against its template; anything else as it is.</summary>
    private static JsonElement Resolve(JsonElement value, JsonElement template)
    {
        if (value.ValueKind == JsonValueKind.String && VariableExpression().Match(value.GetString()!) is { Success: true } match)
        {
            return template.GetProperty("variables").GetProperty(match.Groups[1].Value);
        }

        return value;
    }

    /// <summary>Role assignments with the built-in role id their roleDefinitionId names (through the template's variables).</summary>
    private static List<(string RoleId, string Scope, string PrincipalId, bool Loop)> RoleAssignments(JsonElement template) =>
        [.. OfType(template, "Microsoft.Authorization/roleAssignments").Select(r =>
        {
            var properties = r.Resource.GetProperty("properties");
            var definition = properties.GetProperty("roleDefinitionId").GetString()!;
            var variable = VariableReference().Match(definition);
            var roleId = variable.Success ? r.Template.GetProperty("variables").GetProperty(variable.Groups[1].Value).GetString()! : definition;
            return (roleId, r.Resource.TryGetProperty("scope", out var scope) ? scope.GetString()! : string.Empty,
                properties.GetProperty("principalId").GetString()!, r.Resource.TryGetProperty("copy", out _));
        })];

    /// <summary>The app settings the function app module writes (the settings module's <c>settings</c> parameter).</summary>
    private static JsonElement AppSettings(JsonElement main)
    {
        var module = OfType(main, "Microsoft.Resources/deployments")
            .Single(d => d.Resource.GetProperty("properties").GetProperty("template").GetProperty("resources").EnumerateArray()
                .Any(r => r.GetProperty("type").GetString() == "Microsoft.Web/sites/config"));
        return module.Resource.GetProperty("properties").GetProperty("parameters").GetProperty("settings").GetProperty("value");
    }

    /// <summary>The expression of the vault settings the function app module passes to the settings module.</summary>
    private static string VaultSettings(JsonElement main) =>
        OfType(main, "Microsoft.Resources/deployments")
            .Select(d => d.Resource.GetProperty("properties"))
            .Where(p => p.TryGetProperty("parameters", out var parameters) && parameters.TryGetProperty("vaultSettings", out _))
            .Select(p => p.GetProperty("parameters").GetProperty("vaultSettings").ToString())
            .Single();

    /// <summary>
    /// The vault count is a parameter (default 1). The compiled template is checked for what each count
    /// deploys, since the Bicep compiler does not evaluate parameters: with 1 the copy loop of extra vaults is empty
    /// (range(1, 0)) and the one vault is Keys__KeyVaultUri; with 3 the loop makes vaults kv1- and kv2-, each with the
    /// app's Crypto User and Crypto Officer roles, and the settings are Keys__Vaults__0__Uri … Keys__Vaults__2__Uri.
    /// </summary>
    [Fact]
    public void The_vault_count_creates_that_many_signing_vaults_with_roles_and_their_Keys_Vaults_settings()
    {
        using var template = Compile("main.bicep");
        var root = template.RootElement;
        var count = root.GetProperty("parameters").GetProperty("signingVaultCount");
        Assert.Equal(1, count.GetProperty("defaultValue").GetInt32());
        Assert.Equal(1, count.GetProperty("minValue").GetInt32());

        // Vaults 1…count-1, one module each (vault 0 is the vault that also holds the secrets).
        var extra = OfType(root, "Microsoft.Resources/deployments").Single(d => d.Resource.GetProperty("name").GetString()!.Contains("signingvault-", StringComparison.Ordinal));
        Assert.Equal("[length(range(1, sub(parameters('signingVaultCount'), 1)))]", extra.Resource.GetProperty("copy").GetProperty("count").GetString());
        Assert.Contains("kv{0}-{1}", extra.Resource.GetProperty("properties").GetProperty("parameters").GetProperty("name").ToString(), StringComparison.Ordinal);
        var nested = extra.Resource.GetProperty("properties").GetProperty("template");
        var vault = Assert.Single(OfType(nested, "Microsoft.KeyVault/vaults")).Resource.GetProperty("properties");
        Assert.Equal("premium", vault.GetProperty("sku").GetProperty("name").GetString());
        Assert.True(vault.GetProperty("enablePurgeProtection").GetBoolean());
        Assert.True(vault.GetProperty("enableRbacAuthorization").GetBoolean());
        var roles = RoleAssignments(nested);
        Assert.Contains(roles, r => r.RoleId == "12338af0-0e69-4776-bea7-57ae8d297424" && r.PrincipalId == "[parameters('functionPrincipalId')]");
        Assert.Contains(roles, r => r.RoleId == "14b46e9e-c2b7-41b4-b07b-48a6ebf60603" && r.PrincipalId == "[parameters('functionPrincipalId')]");

        // Their URIs follow vault 0's, in order, and become the settings: one → Keys__KeyVaultUri, more → Keys__Vaults__N__Uri.
        var uris = root.GetProperty("variables").GetProperty("copy").EnumerateArray().Single(v => v.GetProperty("name").GetString() == "extraSigningVaultUris");
        Assert.Equal("[length(range(1, sub(parameters('signingVaultCount'), 1)))]", uris.GetProperty("count").GetString());
        var settings = VaultSettings(root);
        Assert.Contains("if(equals(length(parameters('signingVaultUris')), 1), createObject('value', createObject('Keys__KeyVaultUri', parameters('signingVaultUris')[0]))", settings, StringComparison.Ordinal);
        Assert.Contains("toObject(range(0, length(parameters('signingVaultUris'))), lambda('i', format('Keys__Vaults__{0}__Uri'", settings, StringComparison.Ordinal);

        // docs/api.md, "Rate limits": the per-client request limit grows with the vaults, so one client may use all of them
        // (12,000 a minute per vault, docs/capacity.md).
        Assert.Equal("[string(mul(12000, length(parameters('signingVaultUris'))))]", AppSettings(root).GetProperty("RateLimits__PerClientPerMinute").GetString());

        // azd passes the count from the environment (SIGNING_VAULT_COUNT), 1 when unset.
        // Unquoted, so that azd's substitution gives a number (an int parameter refuses the string "3").
        var parameterFile = File.ReadAllText(Path.Combine(Root, "infra", "main.parameters.json"));
        Assert.Contains("\"signingVaultCount\": { \"value\": ${SIGNING_VAULT_COUNT=1} }", parameterFile, StringComparison.Ordinal);
        using (var substituted = JsonDocument.Parse(AzdSubstitute(parameterFile, new Dictionary<string, string> { ["SIGNING_VAULT_COUNT"] = "3" })))
        {
            Assert.Equal(3, substituted.RootElement.GetProperty("parameters").GetProperty("signingVaultCount").GetProperty("value").GetInt32());
        }

        // Settings of an earlier vault count do not survive a provision with another.
        var writer = Assert.Single(OfType(root, "Microsoft.Web/sites/config"));
        Assert.Equal("[union(variables('keptSettings'), parameters('settings'), parameters('vaultSettings'), parameters('graphSettings'))]", writer.Resource.GetProperty("properties").GetString());
        Assert.Contains("startsWith(lambdaVariables('s').key, 'Keys__Vaults__')", writer.Template.GetProperty("variables").GetProperty("keptSettings").GetString(), StringComparison.Ordinal);
    }

    [GeneratedRegex(@"^\[variables\('([^']+)'\)\]$")]
    private static partial Regex VariableExpression();

    [GeneratedRegex(@"variables\('([^']+)'\)")]
    private static partial Regex VariableReference();

    [Fact]
    public void Main_bicep_compiles_and_lints_without_warnings()
    {
        foreach (var file in new[] { "main.bicep", "eventsubscriptions.bicep" })
        {
            var build = Bicep("build", file, "--stdout");
            Assert.True(build.ExitCode == 0, build.Errors);
            Assert.DoesNotContain("Warning", build.Errors, StringComparison.Ordinal);
            var lint = Bicep("lint", file);
            Assert.True(lint.ExitCode == 0 && string.IsNullOrWhiteSpace(lint.Errors + lint.Output), file + ": " + lint.Errors + lint.Output);
        }
    }

    [Fact]
    public void The_template_deploys_the_function_app_storage_vault_roles_and_event_grid_azd_expects()
    {
        var build = Bicep("build", "main.bicep", "--stdout");
        Assert.Equal(0, build.ExitCode);
        var json = build.Output;
        using var template = JsonDocument.Parse(json);
        Assert.Equal("subscription", template.RootElement.GetProperty("$schema").GetString()!.Contains("subscriptionDeploymentTemplate", StringComparison.Ordinal) ? "subscription" : "other");

        // azd conventions, and every value the hooks read from the azd environment.
        Assert.Contains("azd-env-name", json, StringComparison.Ordinal);
        Assert.Contains("azd-service-name", json, StringComparison.Ordinal);
        foreach (var output in new[] { "AZURE_FUNCTION_APP_NAME", "TOKEN_SERVICE_URL", "TOKEN_SERVICE_ISSUER", "AZURE_KEY_VAULT_URI", "AZURE_KEY_VAULT_NAME", "AZURE_STORAGE_TABLE_URI",
            "AZURE_RESOURCE_GROUP", "AZURE_FUNCTION_PRINCIPAL_ID", "AZURE_EVENTGRID_TOPIC_NAME", "AZURE_STORAGE_ACCOUNT_NAME", "AZURE_EVENTGRID_DEADLETTER_CONTAINER", "AZURE_EVENTGRID_IDENTITY_ID" })
        {
            Assert.True(template.RootElement.GetProperty("outputs").TryGetProperty(output, out _), output);
        }

        // Flex Consumption, dotnet-isolated 10.0, user-assigned identity.
        Assert.Contains("FlexConsumption", json, StringComparison.Ordinal);
        Assert.Contains("dotnet-isolated", json, StringComparison.Ordinal);
        Assert.Contains("UserAssigned", json, StringComparison.Ordinal);

        // Storage without shared keys; Key Vault Premium with RBAC, soft delete, purge protection.
        Assert.Contains("\"allowSharedKeyAccess\": false", json, StringComparison.Ordinal);
        Assert.Contains("\"enableRbacAuthorization\": true", json, StringComparison.Ordinal);
        Assert.Contains("\"enablePurgeProtection\": true", json, StringComparison.Ordinal);
        Assert.Contains("premium", json, StringComparison.Ordinal);

        // Least-privilege roles: Crypto User, Crypto Officer (rotation), Table Data Contributor, Blob Data Owner.
        foreach (var role in new[] { "12338af0-0e69-4776-bea7-57ae8d297424", "14b46e9e-c2b7-41b4-b07b-48a6ebf60603", "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3", "b7e6dc6d-f1e8-4753-8033-0f276bb0955b" })
        {
            Assert.Contains(role, json, StringComparison.Ordinal);
        }

        // Every contract setting the app needs.
        foreach (var setting in new[] { "TokenService__Issuer", "Idp__Issuer", "Idp__Audience", "Idp__JwksUri", "Idp__UserIdClaim", "Storage__TableServiceUri", "Keys__Algorithm", "Events__WebhookSecret" })
        {
            Assert.True(AppSettings(template.RootElement).TryGetProperty(setting, out _), setting);
        }

        // The signing vault settings (Keys__KeyVaultUri for one vault) come with the vault count: see the test below.
        Assert.Contains("Keys__KeyVaultUri", VaultSettings(template.RootElement), StringComparison.Ordinal);

        // No secrets in outputs; the only secret parameters are those azd generates (nobody types one): the webhook
        // secret and the Graph subscription's clientState.
        foreach (var item in template.RootElement.GetProperty("outputs").EnumerateObject())
        {
            Assert.DoesNotContain("secret", item.Name, StringComparison.OrdinalIgnoreCase);
            Assert.NotEqual("securestring", item.Value.GetProperty("type").GetString(), StringComparer.OrdinalIgnoreCase);
            Assert.DoesNotContain("eventsWebhookSecret", item.Value.GetProperty("value").GetString()!, StringComparison.Ordinal);
        }

        var secretParameters = template.RootElement.GetProperty("parameters").EnumerateObject()
            .Where(p => p.Name.Contains("secret", StringComparison.OrdinalIgnoreCase) || p.Value.GetProperty("type").GetString()!.StartsWith("secure", StringComparison.OrdinalIgnoreCase))
            .Select(p => p.Name).ToList();
        Assert.Equal(new[] { "eventsWebhookSecret", "graphClientState" }, secretParameters);
        foreach (var name in secretParameters)
        {
            Assert.Equal("generate", template.RootElement.GetProperty("parameters").GetProperty(name).GetProperty("metadata").GetProperty("azd").GetProperty("type").GetString());
        }
    }

    [Fact]
    public void Fix1_the_webhook_secret_is_a_generated_key_vault_secret_read_through_a_key_vault_reference_with_the_user_assigned_identity()
    {
        using var template = Compile("main.bicep");
        var main = template.RootElement;

        // A secure parameter azd generates once (metadata azd.type generate), with no default and not in the parameters file.
        var parameter = main.GetProperty("parameters").GetProperty("eventsWebhookSecret");
        Assert.Equal("securestring", parameter.GetProperty("type").GetString());
        Assert.False(parameter.TryGetProperty("defaultValue", out _));
        Assert.Equal("generate", parameter.GetProperty("metadata").GetProperty("azd").GetProperty("type").GetString());
        Assert.True(parameter.GetProperty("metadata").GetProperty("azd").GetProperty("config").GetProperty("length").GetInt32() >= 32);
        Assert.DoesNotContain("eventsWebhookSecret", File.ReadAllText(Path.Combine(Root, "infra", "main.parameters.json")), StringComparison.Ordinal);

        // Stored as Key Vault secrets at provision time: the webhook secret, and the Graph subscription's clientState.
        var secrets = OfType(main, "Microsoft.KeyVault/vaults/secrets").Select(s => s.Resource.GetProperty("properties").GetProperty("value").GetString()).ToList();
        Assert.Equal(["[parameters('eventsWebhookSecret')]", "[parameters('graphClientState')]"], secrets.Order(StringComparer.Ordinal));

        // The app setting is a Key Vault reference to that secret's versionless URI, not a value.
        var setting = AppSettings(main).GetProperty("Events__WebhookSecret").GetString()!;
        Assert.StartsWith("[format('@Microsoft.KeyVault(SecretUri={0})'", setting, StringComparison.Ordinal);
        var keyVaultModule = OfType(main, "Microsoft.Resources/deployments").Single(d => d.Resource.GetProperty("name").GetString() == "keyvault");
        Assert.Contains("secretUri", keyVaultModule.Resource.GetProperty("properties").GetProperty("template").GetProperty("outputs").GetProperty("eventsWebhookReferenceUri").GetProperty("value").GetString()!, StringComparison.Ordinal);

        // The site resolves Key Vault references with its user-assigned identity (it has no system-assigned one).
        var site = Assert.Single(OfType(main, "Microsoft.Web/sites")).Resource;
        Assert.Equal("UserAssigned", site.GetProperty("identity").GetProperty("type").GetString());
        Assert.Equal("[parameters('identityId')]", site.GetProperty("properties").GetProperty("keyVaultReferenceIdentity").GetString());
        Assert.Contains("parameters('identityId')", site.GetProperty("identity").GetProperty("userAssignedIdentities").EnumerateObject().Single().Name, StringComparison.Ordinal);

        // That identity may read secrets: Key Vault Secrets User on the vault.
        var reader = Assert.Single(RoleAssignments(main), r => r.RoleId == KeyVaultSecretsUser);
        Assert.Equal("[parameters('functionPrincipalId')]", reader.PrincipalId);
        Assert.Contains("Microsoft.KeyVault/vaults", reader.Scope, StringComparison.Ordinal);

        // The role exists before the app's settings are written (the app resolves the reference on start).
        var functionApp = OfType(main, "Microsoft.Resources/deployments").Single(d => d.Resource.GetProperty("name").GetString() == "functionapp").Resource;
        Assert.Contains(functionApp.GetProperty("dependsOn").EnumerateArray(), d => d.GetString()!.Contains("'roles'", StringComparison.Ordinal));
    }

    /// <summary>The hooks in both forms azure.yaml names: bash on Linux and macOS, PowerShell 7 on Windows.</summary>
    [Theory]
    [InlineData("sh")]
    [InlineData("ps1")]
    public void Fix2_graph_lookups_are_configured_and_a_postprovision_hook_grants_user_read_all(string shell)
    {
        using var template = Compile("main.bicep");
        var main = template.RootElement;
        Assert.Equal("[variables('graphEndpoint')]", AppSettings(main).GetProperty("Events__GraphEndpoint").GetString());
        var module = OfType(main, "Microsoft.Resources/deployments").Single(d => d.Resource.GetProperty("name").GetString() == "functionapp").Resource;
        var graphEndpoints = module.GetProperty("properties").GetProperty("template").GetProperty("variables").GetProperty("graphEndpoints");

        // The base URL: GraphUserLookup appends /v1.0/users/{id} and asks for {endpoint}/.default.
        Assert.Equal("https://graph.microsoft.com", graphEndpoints.GetProperty("AzureCloud").GetString());
        Assert.True(template.RootElement.GetProperty("outputs").TryGetProperty("AZURE_FUNCTION_PRINCIPAL_ID", out _));

        var script = "scripts/grant-graph-permission." + shell;
        var azure = File.ReadAllText(Path.Combine(Root, "azure.yaml"));
        Assert.Matches(@"(?m)^  postprovision:\n(    .*\n)*?      run: \./" + Regex.Escape(script) + "$", azure);
        AssertHookScript(script);

        using var az = new FakeAz();
        var environment = new Dictionary<string, string> { ["AZURE_FUNCTION_PRINCIPAL_ID"] = "11111111-2222-3333-4444-555555555555" };
        var run = az.Run(script, environment);
        Assert.True(run.ExitCode == 0, run.Output);
        Assert.Contains(az.Calls, c => c.StartsWith("ad sp show --id " + GraphAppId, StringComparison.Ordinal) && c.Contains("User.Read.All", StringComparison.Ordinal));
        var grant = Assert.Single(az.Calls, c => c.StartsWith("rest --method post", StringComparison.Ordinal));
        Assert.Contains("--url https://graph.microsoft.com/v1.0/servicePrincipals/graph-sp-object-id/appRoleAssignedTo", grant, StringComparison.Ordinal);
        Assert.Contains("{\"principalId\":\"11111111-2222-3333-4444-555555555555\",\"resourceId\":\"graph-sp-object-id\",\"appRoleId\":\"" + UserReadAll + "\"}", grant, StringComparison.Ordinal);

        // Idempotent: an existing assignment is not posted again.
        using var granted = new FakeAz();
        environment["FAKE_ASSIGNED"] = "1";
        Assert.Equal(0, granted.Run(script, environment).ExitCode);
        Assert.DoesNotContain(granted.Calls, c => c.StartsWith("rest --method post", StringComparison.Ordinal));

        // Without the right to grant, the hook fails (azd goes on: continueOnError) and prints the command for an administrator.
        using var denied = new FakeAz();
        environment["FAKE_ASSIGNED"] = "0";
        environment["FAKE_GRANT_EXIT"] = "1";
        var failed = denied.Run(script, environment);
        Assert.NotEqual(0, failed.ExitCode);
        Assert.Contains("Privileged Role Administrator", failed.Output, StringComparison.Ordinal);
        Assert.Contains("appRoleAssignedTo", failed.Output, StringComparison.Ordinal);
        Assert.Matches(@"(?m)^  postprovision:\n(    .*\n)*?      continueOnError: true$", azure);
    }

    [Fact]
    public void Fix3_every_subscription_dead_letters_with_a_user_assigned_identity_that_may_write_the_dead_letter_container()
    {
        using var mainTemplate = Compile("main.bicep");
        var main = mainTemplate.RootElement;
        using var subscriptionsTemplate = Compile("eventsubscriptions.bicep");
        var subscriptions = subscriptionsTemplate.RootElement;

        // Both subscriptions (custom topic, partner topic) deliver to IdpEvents and dead-letter with the user-assigned
        // identity: a partner topic has no system-assigned identity to dead-letter with.
        var types = new[] { "Microsoft.EventGrid/topics/eventSubscriptions", "Microsoft.EventGrid/partnerTopics/eventSubscriptions" };
        foreach (var type in types)
        {
            var (resource, template) = Assert.Single(OfType(subscriptions, type));
            var properties = Resolve(resource.GetProperty("properties"), template);
            Assert.Equal("AzureFunction", properties.GetProperty("destination").GetProperty("endpointType").GetString());
            Assert.Contains("/functions/IdpEvents", properties.GetProperty("destination").GetProperty("properties").GetProperty("resourceId").GetString()!, StringComparison.Ordinal);
            var deadLetter = properties.GetProperty("deadLetterWithResourceIdentity");
            Assert.Equal("UserAssigned", deadLetter.GetProperty("identity").GetProperty("type").GetString());
            Assert.Equal("[parameters('deadLetterIdentityId')]", deadLetter.GetProperty("identity").GetProperty("userAssignedIdentity").GetString());
            Assert.Equal("StorageBlob", deadLetter.GetProperty("deadLetterDestination").GetProperty("endpointType").GetString());
            Assert.False(properties.TryGetProperty("deadLetterDestination", out _), "dead-lettering without an identity needs shared-key access");
        }

        Assert.DoesNotContain("SystemAssigned", subscriptionsTemplate.RootElement.GetRawText(), StringComparison.Ordinal);

        // The identity exists, is the custom topic's identity, and holds Storage Blob Data Contributor on the container only.
        Assert.Single(OfType(main, "Microsoft.ManagedIdentity/userAssignedIdentities"), r => r.Resource.GetProperty("name").GetString() == "[parameters('deadLetterIdentityName')]");
        var topic = Assert.Single(OfType(main, "Microsoft.EventGrid/topics")).Resource;
        Assert.Equal("UserAssigned", topic.GetProperty("identity").GetProperty("type").GetString());
        Assert.Contains("parameters('deadLetterIdentityName')", topic.GetProperty("identity").GetProperty("userAssignedIdentities").EnumerateObject().Single().Name, StringComparison.Ordinal);
        var writer = Assert.Single(RoleAssignments(main), r => r.RoleId == StorageBlobDataContributor);
        Assert.StartsWith("[resourceId('Microsoft.Storage/storageAccounts/blobServices/containers'", writer.Scope, StringComparison.Ordinal);
        Assert.Contains("deadLetterContainerName", writer.Scope, StringComparison.Ordinal);
        Assert.Contains("Microsoft.ManagedIdentity/userAssignedIdentities', parameters('deadLetterIdentityName')", writer.PrincipalId, StringComparison.Ordinal);
    }

    [Fact]
    public void Fix4_principals_in_event_publisher_principal_ids_may_publish_to_the_topic_without_local_auth()
    {
        using var template = Compile("main.bicep");
        var main = template.RootElement;
        var parameter = main.GetProperty("parameters").GetProperty("eventPublisherPrincipalIds");
        Assert.Equal("array", parameter.GetProperty("type").GetString());
        Assert.Equal(0, parameter.GetProperty("defaultValue").GetArrayLength());

        var topic = Assert.Single(OfType(main, "Microsoft.EventGrid/topics")).Resource;
        Assert.True(topic.GetProperty("properties").GetProperty("disableLocalAuth").GetBoolean());
        var sender = Assert.Single(RoleAssignments(main), r => r.RoleId == EventGridDataSender);
        Assert.True(sender.Loop, "one assignment per publisher");
        Assert.Equal("[resourceId('Microsoft.EventGrid/topics', parameters('topicName'))]", sender.Scope);
        Assert.Equal("[parameters('publisherPrincipalIds')[copyIndex()]]", sender.PrincipalId);
        var eventGrid = OfType(main, "Microsoft.Resources/deployments").Single(d => d.Resource.GetProperty("name").GetString() == "eventgrid").Resource;
        Assert.Equal("[parameters('eventPublisherPrincipalIds')]", eventGrid.GetProperty("properties").GetProperty("parameters").GetProperty("publisherPrincipalIds").GetProperty("value").GetString());

        // azd fills it from EVENT_PUBLISHER_PRINCIPAL_IDS (a JSON array), [] when unset; the file is JSON either way.
        var parameters = File.ReadAllText(Path.Combine(Root, "infra", "main.parameters.json"));
        Assert.Contains("\"eventPublisherPrincipalIds\": { \"value\": ${EVENT_PUBLISHER_PRINCIPAL_IDS=[]} }", parameters, StringComparison.Ordinal);
        using var substituted = JsonDocument.Parse(AzdSubstitute(parameters, new Dictionary<string, string> { ["EVENT_PUBLISHER_PRINCIPAL_IDS"] = "[\"11111111-2222-3333-4444-555555555555\"]" }));
        Assert.Equal(1, substituted.RootElement.GetProperty("parameters").GetProperty("eventPublisherPrincipalIds").GetProperty("value").GetArrayLength());
    }

    [Fact]
    public void Fix5_the_issuer_is_a_parameter_defaulting_to_the_sites_real_host_name_and_is_output()
    {
        using var template = Compile("main.bicep");
        var main = template.RootElement;
        var parameter = main.GetProperty("parameters").GetProperty("issuer");
        Assert.Equal(string.Empty, parameter.GetProperty("defaultValue").GetString());
        var output = main.GetProperty("outputs").GetProperty("TOKEN_SERVICE_ISSUER").GetProperty("value").GetString()!;
        Assert.Contains("'Microsoft.Resources/deployments', 'functionapp')", output, StringComparison.Ordinal);
        Assert.EndsWith(".outputs.issuer.value]", output, StringComparison.Ordinal);
        var functionApp = OfType(main, "Microsoft.Resources/deployments").Single(d => d.Resource.GetProperty("name").GetString() == "functionapp").Resource;
        Assert.Equal("[parameters('issuer')]", functionApp.GetProperty("properties").GetProperty("parameters").GetProperty("issuer").GetProperty("value").GetString());

        // Empty: the site's defaultHostName (never a guessed <name>.azurewebsites.net), read after the site exists.
        var issuer = AppSettings(main).GetProperty("TokenService__Issuer").GetString()!;
        Assert.Equal("[if(empty(parameters('issuer')), format('https://{0}', reference(resourceId('Microsoft.Web/sites', parameters('name')), '2024-04-01').defaultHostName), parameters('issuer'))]", issuer);
        Assert.DoesNotContain("azurewebsites.net", template.RootElement.GetRawText(), StringComparison.Ordinal);

        // Written by a Microsoft.Web/sites/config resource in a module that depends on the site, not by the site itself,
        // and merged over the current settings so that clients added with az survive azd provision.
        var site = Assert.Single(OfType(main, "Microsoft.Web/sites")).Resource;
        Assert.False(site.GetProperty("properties").GetProperty("siteConfig").TryGetProperty("appSettings", out _));
        var settingsModule = OfType(main, "Microsoft.Resources/deployments")
            .Single(d => d.Resource.GetProperty("properties").GetProperty("template").GetProperty("resources").EnumerateArray().Any(r => r.GetProperty("type").GetString() == "Microsoft.Web/sites/config")).Resource;
        Assert.Contains(settingsModule.GetProperty("dependsOn").EnumerateArray(), d => d.GetString() == "[resourceId('Microsoft.Web/sites', parameters('name'))]");
        Assert.StartsWith("[list(format('{0}/config/appsettings'", settingsModule.GetProperty("properties").GetProperty("parameters").GetProperty("currentSettings").GetProperty("value").GetString()!, StringComparison.Ordinal);
        var config = settingsModule.GetProperty("properties").GetProperty("template").GetProperty("resources").EnumerateArray().Single();
        // (keptSettings: the current settings less the signing vault settings of an earlier vault count.)
        Assert.Equal("[union(variables('keptSettings'), parameters('settings'), parameters('vaultSettings'), parameters('graphSettings'))]", config.GetProperty("properties").GetString());

        // azd passes TOKEN_SERVICE_CUSTOM_ISSUER, not the output's name (which would pin a stale host name).
        var parameters = File.ReadAllText(Path.Combine(Root, "infra", "main.parameters.json"));
        Assert.Contains("\"issuer\": { \"value\": \"${TOKEN_SERVICE_CUSTOM_ISSUER=}\" }", parameters, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("sh")]
    [InlineData("ps1")]
    public void Fix6_azd_up_creates_the_event_subscriptions_after_the_code_in_a_postdeploy_hook(string shell)
    {
        using var template = Compile("main.bicep");
        var main = template.RootElement;
        Assert.False(main.GetProperty("parameters").TryGetProperty("createEventSubscription", out _), "no second azd provision");
        Assert.DoesNotContain(Resources(main), r => r.Resource.GetProperty("type").GetString()!.EndsWith("/eventSubscriptions", StringComparison.Ordinal));
        Assert.DoesNotContain("CREATE_EVENT_SUBSCRIPTION", File.ReadAllText(Path.Combine(Root, "infra", "main.parameters.json")), StringComparison.Ordinal);

        var azure = File.ReadAllText(Path.Combine(Root, "azure.yaml"));
        var script = "scripts/create-event-subscription." + shell;
        Assert.Matches(@"(?m)^  postdeploy:\n(    .*\n)*?      run: \./" + Regex.Escape(script) + "$", azure);
        AssertHookScript(script);

        // With a partner topic: activate it, attach the dead-letter identity, then deploy infra/eventsubscriptions.bicep.
        using var az = new FakeAz();
        var environment = new Dictionary<string, string>
        {
            ["AZURE_SUBSCRIPTION_ID"] = "sub-1",
            ["AZURE_RESOURCE_GROUP"] = "rg-tokens",
            ["AZURE_FUNCTION_APP_NAME"] = "func-abc",
            ["AZURE_EVENTGRID_TOPIC_NAME"] = "evgt-abc",
            ["AZURE_STORAGE_ACCOUNT_NAME"] = "stabc",
            ["AZURE_EVENTGRID_DEADLETTER_CONTAINER"] = "eventgrid-deadletter",
            ["AZURE_EVENTGRID_IDENTITY_ID"] = "/subscriptions/sub-1/resourceGroups/rg-tokens/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-evgt-abc",
            ["IDP_PARTNER_TOPIC_NAME"] = "graph-users",
            ["FAKE_FUNCTION_MISSING_TIMES"] = "2",
        };
        var run = az.Run(script, environment);
        Assert.True(run.ExitCode == 0, run.Output);
        var calls = az.Calls;
        var functionChecks = calls.Count(c => c.Contains("/providers/Microsoft.Web/sites/func-abc/functions/IdpEvents", StringComparison.Ordinal));
        Assert.Equal(3, functionChecks); // waited until the function was listed
        var activate = calls.FindIndex(c => c.StartsWith("rest --method post", StringComparison.Ordinal) && c.Contains("/partnerTopics/graph-users/activate", StringComparison.Ordinal));
        var attach = calls.FindIndex(c => c.StartsWith("rest --method patch", StringComparison.Ordinal) && c.Contains("/partnerTopics/graph-users?", StringComparison.Ordinal));
        var deploy = calls.FindIndex(c => c.StartsWith("deployment group create", StringComparison.Ordinal));
        Assert.True(activate >= 0 && attach > activate && deploy > attach, string.Join('\n', calls));
        Assert.Contains("{\"identity\":{\"type\":\"UserAssigned\",\"userAssignedIdentities\":{\"" + environment["AZURE_EVENTGRID_IDENTITY_ID"] + "\":{}}}}", calls[attach], StringComparison.Ordinal);
        var deployment = calls[deploy];
        Assert.Contains("--resource-group rg-tokens", deployment, StringComparison.Ordinal);
        Assert.Contains("--template-file " + Path.Combine(Root, "infra", "eventsubscriptions.bicep"), deployment, StringComparison.Ordinal);
        foreach (var argument in new[] { "topicName=evgt-abc", "functionAppName=func-abc", "storageAccountName=stabc", "deadLetterContainerName=eventgrid-deadletter",
            "deadLetterIdentityId=" + environment["AZURE_EVENTGRID_IDENTITY_ID"], "partnerTopicName=graph-users" })
        {
            Assert.Contains(" " + argument, deployment, StringComparison.Ordinal);
        }

        // Without a partner topic: only the custom topic's subscription, no partner topic calls.
        using var plain = new FakeAz();
        environment.Remove("IDP_PARTNER_TOPIC_NAME");
        environment.Remove("FAKE_FUNCTION_MISSING_TIMES");
        Assert.Equal(0, plain.Run(script, environment).ExitCode);
        Assert.DoesNotContain(plain.Calls, c => c.Contains("partnerTopics", StringComparison.Ordinal));
        Assert.EndsWith(" partnerTopicName=", Assert.Single(plain.Calls, c => c.StartsWith("deployment group create", StringComparison.Ordinal)), StringComparison.Ordinal);
    }

    [Fact]
    public void Docs_and_infra_name_the_management_route_for_force_logout()
    {
        var deployment = File.ReadAllText(Path.Combine(Root, "docs", "deployment.md"));
        Assert.Contains("/management/users/{userId}/revoke", deployment, StringComparison.Ordinal);
        foreach (var file in Directory.EnumerateFiles(Path.Combine(Root, "infra"), "*", SearchOption.AllDirectories)
            .Concat([Path.Combine(Root, "azure.yaml"), Path.Combine(Root, "docs", "deployment.md")])
            .Concat(Directory.EnumerateFiles(Path.Combine(Root, "scripts"))))
        {
            Assert.DoesNotContain("admin/users", File.ReadAllText(file), StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Azd_host_and_local_settings_files_match_the_contract()
    {
        var azure = File.ReadAllText(Path.Combine(Root, "azure.yaml"));
        Assert.Contains("project: ./functions/TokenFunctions", azure, StringComparison.Ordinal);
        Assert.Contains("host: function", azure, StringComparison.Ordinal);
        Assert.Contains("language: dotnet", azure, StringComparison.Ordinal);

        using var host = JsonDocument.Parse(File.ReadAllText(Path.Combine(Root, "host.json")));
        Assert.Equal(string.Empty, host.RootElement.GetProperty("extensions").GetProperty("http").GetProperty("routePrefix").GetString());

        using var settings = JsonDocument.Parse(File.ReadAllText(Path.Combine(Root, "local.settings.sample.json")));
        var values = settings.RootElement.GetProperty("Values");
        Assert.Equal("dotnet-isolated", values.GetProperty("FUNCTIONS_WORKER_RUNTIME").GetString());
        var contract = File.ReadAllText(Path.Combine(Root, "..", "shared", "CONTRACT.md"));
        foreach (var key in new[] { "TokenService__Issuer", "TokenService__AccessTokenLifetime", "TokenService__RefreshTokenLifetime", "TokenService__SessionIdleTimeout",
            "TokenService__SessionAbsoluteLifetime", "TokenService__MaxSessionsPerUser", "TokenService__RefreshTokenReuseLeeway",
            "Storage__TableConnectionString", "Keys__Algorithm", "Keys__RotationInterval", "Keys__PropagationTime",
            "Keys__RetentionTime", "Keys__CheckInterval", "Events__WebhookSecret" })
        {
            Assert.Contains(key, contract, StringComparison.Ordinal);
            Assert.True(values.TryGetProperty(key, out _), $"local.settings.sample.json lacks {key}");
        }

        // A local run uses the development IdP and clients: no Idp or Clients in the sample (README, Functions app).
        Assert.DoesNotContain(values.EnumerateObject(), p => p.Name.StartsWith("Idp__", StringComparison.Ordinal) || p.Name.StartsWith("Clients__", StringComparison.Ordinal));
        Assert.Equal("Development", values.GetProperty("AZURE_FUNCTIONS_ENVIRONMENT").GetString());
    }

    /// <summary>A bash hook starts with its shebang and is executable; a PowerShell hook has its bash twin.</summary>
    private static void AssertHookScript(string relativePath)
    {
        if (relativePath.EndsWith(".sh", StringComparison.Ordinal))
        {
            AssertExecutable(relativePath);
            return;
        }

        Assert.True(File.Exists(Path.Combine(Root, relativePath)), relativePath);
        Assert.True(File.Exists(Path.Combine(Root, Path.ChangeExtension(relativePath, ".sh"))), relativePath + " has no bash twin");
    }

    private static void AssertExecutable(string relativePath)
    {
        var path = Path.Combine(Root, relativePath);
        Assert.True(File.Exists(path), relativePath);
        Assert.StartsWith("#!/usr/bin/env bash\n", File.ReadAllText(path), StringComparison.Ordinal);
        if (!OperatingSystem.IsWindows())
        {
            // azd runs hook scripts directly on Linux and macOS.
            Assert.True(File.GetUnixFileMode(path).HasFlag(UnixFileMode.UserExecute), relativePath + " is not executable");
        }
    }

    /// <summary>
    /// A fake <c>az</c> first on PATH: records each call's arguments (one line per call) and answers what the hook
    /// scripts ask with fixed values: the Microsoft Graph service principal <c>graph-sp-object-id</c>, User.Read.All,
    /// <c>FAKE_ASSIGNED</c> existing assignments, a never-activated partner topic without identity, and IdpEvents
    /// missing for the first <c>FAKE_FUNCTION_MISSING_TIMES</c> checks.
    /// </summary>
    private sealed class FakeAz : IDisposable
    {
        private const string Script = """
            #!/usr/bin/env bash
            printf '%s\n' "$*" >> "$FAKE_AZ_LOG"
            args="$*"
            case "$args" in
              "account show"*|"account set"*) exit 0 ;;
              "cloud show"*) echo "https://graph.microsoft.com/" ;;
              "ad sp show"*"--query id "*) echo "graph-sp-object-id" ;;
              "ad sp show"*"appRoles"*) echo "df021288-bdef-4463-88db-98f22de89214" ;;
              "rest --method get"*"/appRoleAssignments"*) echo "${FAKE_ASSIGNED:-0}" ;;
              "rest --method post"*"/appRoleAssignedTo"*) exit "${FAKE_GRANT_EXIT:-0}" ;;
              "rest --method get"*"/functions/IdpEvents"*)
                count=$(grep -c "/functions/IdpEvents" "$FAKE_AZ_LOG")
                [ "$count" -gt "${FAKE_FUNCTION_MISSING_TIMES:-0}" ] || { echo "ERROR: (NotFound)" >&2; exit 3; } ;;
              "rest --method get"*"partnerTopics"*"activationState"*) echo "NeverActivated" ;;
              "rest --method get"*"partnerTopics"*"identity.type"*) echo "None" ;;
              "rest --method get"*"partnerTopics"*"keys("*) echo "" ;;
              "rest --method post"*"/activate"*) exit 0 ;;
              "rest --method patch"*) exit 0 ;;
              "deployment group create"*) exit 0 ;;
              *) echo "fake az: unexpected call: $args" >&2; exit 2 ;;
            esac
            """;

        private readonly string _directory = Directory.CreateTempSubdirectory("fake-az-").FullName;

        public FakeAz()
        {
            var az = Path.Combine(_directory, "az");
            File.WriteAllText(az, Script.Replace("\r\n", "\n", StringComparison.Ordinal) + "\n");
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(az, File.GetUnixFileMode(az) | UnixFileMode.UserExecute);
            }
        }

        private string Log => Path.Combine(_directory, "calls.log");

        public List<string> Calls => File.Exists(Log) ? [.. File.ReadAllLines(Log)] : [];

        public (int ExitCode, string Output) Run(string relativePath, IReadOnlyDictionary<string, string> environment)
        {
            // PowerShell 7 is the repository's local dotnet tool (.config/dotnet-tools.json; scripts/test.sh restores it).
            var powerShell = relativePath.EndsWith(".ps1", StringComparison.Ordinal);
            var start = new ProcessStartInfo(powerShell ? "dotnet" : "bash") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = Root };
            if (powerShell)
            {
                foreach (var argument in new[] { "tool", "run", "pwsh", "--", "-NoProfile", "-NonInteractive", "-File" })
                {
                    start.ArgumentList.Add(argument);
                }
            }

            start.ArgumentList.Add(Path.Combine(Root, relativePath));
            foreach (var name in start.Environment.Keys.Where(k => k.StartsWith("AZURE_", StringComparison.Ordinal) || k.StartsWith("IDP_", StringComparison.Ordinal) || k.StartsWith("FAKE_", StringComparison.Ordinal)).ToList())
            {
                start.Environment.Remove(name);
            }

            start.Environment["PATH"] = _directory + Path.PathSeparator + Environment.GetEnvironmentVariable("PATH");
            start.Environment["FAKE_AZ_LOG"] = Log;
            start.Environment["WAIT_SECONDS"] = "0";
            start.Environment["RETRY_SECONDS"] = "0";
            start.Environment["GRAPH_RETRY_SECONDS"] = "0";
            foreach (var (name, value) in environment)
            {
                start.Environment[name] = value;
            }

            using var process = Process.Start(start)!;
            var output = process.StandardOutput.ReadToEndAsync();
            var errors = process.StandardError.ReadToEndAsync();
            Assert.True(process.WaitForExit(60_000), relativePath + " did not finish in a minute");
            return (process.ExitCode, output.Result + errors.Result);
        }

        public void Dispose() => Directory.Delete(_directory, recursive: true);
    }
}
