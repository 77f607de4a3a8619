using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;
using TokenService.Tests.Tables;

namespace TokenService.Tests.Docs;

/// <summary>
/// README.md's promises to a newcomer: the prerequisites name the SDK global.json requires and where the Development
/// environment comes from; one command runs the service and one runs all tests; no install step hides in a comment;
/// the walkthrough's commands are kept in one place (scripts/walkthrough.sh runs the README block itself and has a
/// check for each of its steps, and scripts/test.sh runs it and counts it).
/// </summary>
public sealed partial class ReadmeTests
{
    private static readonly string Root = AzuriteFixture.FindRepositoryRoot();
    private static readonly string Readme = File.ReadAllText(Path.Combine(Root, "README.md")).ReplaceLineEndings("\n");

    [Fact]
    public void The_prerequisites_name_the_sdk_global_json_requires()
    {
        using var globalJson = JsonDocument.Parse(File.ReadAllText(Path.Combine(Root, "global.json")));
        var sdk = globalJson.RootElement.GetProperty("sdk");
        var version = sdk.GetProperty("version").GetString()!;
        var rollForward = sdk.GetProperty("rollForward").GetString()!;
        var prerequisites = Section("## Prerequisites");
        Assert.Contains($"\"version\": \"{version}\"", prerequisites, StringComparison.Ordinal);
        Assert.Contains($"\"rollForward\": \"{rollForward}\"", prerequisites, StringComparison.Ordinal);
        Assert.Equal("latestFeature", rollForward); // the text explains latestFeature: 10.0.1xx is refused
        Assert.Contains($".NET SDK {version}", prerequisites, StringComparison.Ordinal);
        Assert.Contains("10.0.1xx", prerequisites, StringComparison.Ordinal);
        foreach (var tool in new[] { "Node.js", "npm", "`curl`", "`jq`" })
        {
            Assert.Contains(tool, prerequisites, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void The_prerequisites_say_where_the_development_environment_comes_from()
    {
        var prerequisites = Section("## Prerequisites");
        Assert.Contains("functions/TokenService.Server/Properties/launchSettings.json", prerequisites, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(Root, "functions", "TokenService.Server", "Properties", "launchSettings.json")));
        Assert.Contains("--no-launch-profile", prerequisites, StringComparison.Ordinal);
        Assert.Contains("Production", prerequisites, StringComparison.Ordinal);
        Assert.Contains("ASPNETCORE_ENVIRONMENT=Development dotnet ", prerequisites, StringComparison.Ordinal);
    }

    [Fact]
    public void One_command_runs_the_service_and_one_runs_all_tests()
    {
        Assert.Equal("dotnet run --project functions/TokenService.Server", BashBlocks(Section("## Run it locally")).First());
        Assert.Equal("bash scripts/test.sh", BashBlocks(Section("## Run all tests")).First());
    }

    [Fact]
    public void No_command_hides_in_a_trailing_comment()
    {
        foreach (var block in BashBlocks(Readme))
        {
            foreach (var line in block.Split('\n'))
            {
                var comment = TrailingComment().Match(line);
                if (comment.Success)
                {
                    Assert.DoesNotMatch(@"`?(npm|npx|dotnet|bash|func)\s", comment.Groups["comment"].Value);
                }
            }
        }
    }

    [Fact]
    public void The_key_file_is_no_longer_documented_in_the_source_tree()
    {
        Assert.DoesNotContain("TokenService.Server/.devkeys", Readme, StringComparison.Ordinal);
        Assert.Contains("token-service/TokenService.Server/http_127.0.0.1_7071/signing-keys.json", Readme, StringComparison.Ordinal);
    }

    [Fact]
    public void The_walkthrough_lists_the_development_idp_routes_fields_and_lifetimes()
    {
        var walkthrough = Section("## Walkthrough:");
        Assert.Contains("`GET /dev-idp/jwks.json`", walkthrough, StringComparison.Ordinal);
        Assert.Contains("`POST /dev-idp/id-token`", walkthrough, StringComparison.Ordinal);
        Assert.Contains("`acr`", walkthrough, StringComparison.Ordinal);
        Assert.Contains("`amr`", walkthrough, StringComparison.Ordinal);
        Assert.Contains("300 s", walkthrough, StringComparison.Ordinal);
        Assert.Contains("every start", walkthrough, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_walkthrough_script_runs_the_readme_block_itself()
    {
        var block = BashBlocks(Section("## Walkthrough:")).First();
        var (exit, printed) = await BashAsync("scripts/walkthrough.sh", "--print");
        Assert.Equal(0, exit);
        Assert.Equal(block + "\n", printed.ReplaceLineEndings("\n"));
    }

    [Fact]
    public void The_walkthrough_script_checks_every_step_and_step_6_proves_the_revocation()
    {
        var block = BashBlocks(Section("## Walkthrough:")).First();
        var steps = StepHeading().Matches(block).Select(m => int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)).ToList();
        Assert.Equal(Enumerable.Range(1, steps.Count), steps);
        Assert.True(steps.Count >= 6, "the walkthrough has " + steps.Count + " steps");

        var script = File.ReadAllText(Path.Combine(Root, "scripts", "walkthrough.sh"));
        var checks = CheckFunction().Matches(script).Select(m => int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)).Order().ToList();
        Assert.Equal(steps, checks);

        // Step 6 revokes a token of a session of its own and shows the effect, not a 200 on an ended session.
        var step6 = block[block.IndexOf("# 6.", StringComparison.Ordinal)..block.IndexOf("# 7.", StringComparison.Ordinal)];
        Assert.Contains("token-exchange", step6, StringComparison.Ordinal);
        Assert.Contains("/oauth2/revoke", step6, StringComparison.Ordinal);
        Assert.Contains("-d refresh_token=$RT3", step6, StringComparison.Ordinal);
        Assert.Contains("{\"active\":false}", step6, StringComparison.Ordinal);
        Assert.DoesNotContain("$RT2", step6, StringComparison.Ordinal);

        // Sessions are listed with an access token for this service.
        Assert.Contains("-d audience=$BASE", block, StringComparison.Ordinal);
    }

    [Fact]
    public void The_test_script_runs_the_walkthrough_and_counts_it()
    {
        var test = File.ReadAllText(Path.Combine(Root, "scripts", "test.sh"));
        Assert.Contains("bash scripts/walkthrough.sh", test, StringComparison.Ordinal);
        Assert.Contains("^walkthrough: [0-9]* passed, [0-9]* failed$", test, StringComparison.Ordinal);
        Assert.Contains("command -v jq", test, StringComparison.Ordinal);
        var script = File.ReadAllText(Path.Combine(Root, "scripts", "walkthrough.sh"));
        Assert.Contains("echo \"walkthrough: $passed passed, $failed failed\"", script, StringComparison.Ordinal);
        Assert.Contains("dotnet run --project functions/TokenService.Server", script, StringComparison.Ordinal);
        Assert.Contains("TokenService__Issuer=\"$url\"", script, StringComparison.Ordinal);
    }

    /// <summary>
    /// apt-get needs root: every apt-get command of scripts/test.sh runs through <c>$sudo_cmd</c> (sudo when not root
    /// and sudo exists), not only the chromium step (jq and curl were once installed without it).
    /// </summary>
    [Fact]
    public void Every_apt_get_of_the_test_script_runs_through_sudo_when_not_root()
    {
        var test = File.ReadAllText(Path.Combine(Root, "scripts", "test.sh"));
        Assert.Contains("if [ \"$(id -u)\" -ne 0 ] && command -v sudo >/dev/null 2>&1; then sudo_cmd=\"sudo\"; fi", test, StringComparison.Ordinal);
        var commands = test.Split('\n')
            .Where(line => !line.TrimStart().StartsWith('#'))
            .SelectMany(line => line.Split(["&&", "||", ";", "(", ")"], StringSplitOptions.TrimEntries))
            .Where(command => !command.StartsWith("echo ", StringComparison.Ordinal) && System.Text.RegularExpressions.Regex.IsMatch(command, @"\bapt-get\s+(update|install)\b"))
            .ToList();
        Assert.True(commands.Count >= 6, string.Join('\n', commands));
        Assert.All(commands, command => Assert.StartsWith("$sudo_cmd ", command, StringComparison.Ordinal));
    }

    /// <summary>From <paramref name="heading"/> (a line starting with it) to the next level-2 heading.</summary>
    private static string Section(string heading)
    {
        var start = Readme.IndexOf("\n" + heading, StringComparison.Ordinal);
        Assert.True(start >= 0, "README.md has no heading " + heading);
        var end = Readme.IndexOf("\n## ", start + 1, StringComparison.Ordinal);
        return Readme[(start + 1)..(end < 0 ? Readme.Length : end)];
    }

    /// <summary>The bash code blocks of <paramref name="text"/>, without their fences and final newline.</summary>
    private static IEnumerable<string> BashBlocks(string text) =>
        BashBlock().Matches(text).Select(m => m.Groups["body"].Value);

    private static async Task<(int Exit, string Stdout)> BashAsync(params string[] args)
    {
        var start = new ProcessStartInfo("bash", args) { WorkingDirectory = Root, RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(process.ExitCode == 0, await stderr);
        return (process.ExitCode, await stdout);
    }

    [GeneratedRegex(@"^```bash[ \t]*\n(?<body>.*?)\n```[ \t]*$", RegexOptions.Singleline | RegexOptions.Multiline)]
    private static partial Regex BashBlock();

    /// <summary>A comment after a command on the same line (not a whole-line comment).</summary>
    [GeneratedRegex(@"^\s*[^#\s][^#]*\s#(?<comment>.*)$")]
    private static partial Regex TrailingComment();

    [GeneratedRegex(@"^# (\d+)\. ", RegexOptions.Multiline)]
    private static partial Regex StepHeading();

    [GeneratedRegex(@"^check_step_(\d+)\(\)", RegexOptions.Multiline)]
    private static partial Regex CheckFunction();
}
