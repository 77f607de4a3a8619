using System.Diagnostics;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using TokenService.Configuration;
using TokenService.Tests.Infrastructure;
using TokenService.Tests.Tables;

namespace TokenService.Tests.Keys;

/// <summary>
/// Where the local development signing key lives: a relative <c>Keys:DevelopmentKeyPath</c> resolves against the
/// content root (not the current directory), and the default lives outside the source tree, in the user's local
/// application data under the application's name, in both hosts; the built host started from two folders finds one
/// key file.
/// </summary>
public sealed class DevelopmentKeyFileTests
{
    private static readonly string ContentRoot = Path.Combine(Path.GetTempPath(), "content-root");
    private static readonly string LocalData = Path.Combine(Path.GetTempPath(), "local-data");

    [Fact]
    public void A_relative_path_resolves_against_the_content_root()
    {
        Assert.Equal(Path.Combine(ContentRoot, "keys", "k.json"), DevelopmentKeyFile.Resolve(Path.Combine("keys", "k.json"), ContentRoot, "App", LocalData));
        Assert.Equal(Path.Combine(Path.GetTempPath(), "k.json"), DevelopmentKeyFile.Resolve(Path.Combine("..", "k.json"), ContentRoot, "App", LocalData));
    }

    [Fact]
    public void An_absolute_path_is_kept()
    {
        var path = Path.Combine(Path.GetTempPath(), "elsewhere", "k.json");
        Assert.Equal(path, DevelopmentKeyFile.Resolve(path, ContentRoot, "App", LocalData));
    }

    [Fact]
    public void The_default_is_under_the_local_application_data_per_application()
    {
        Assert.Equal(Path.Combine(LocalData, "token-service", "TokenService.Server", "signing-keys.json"), DevelopmentKeyFile.Resolve(null, ContentRoot, "TokenService.Server", LocalData));
        Assert.Equal(Path.Combine(LocalData, "token-service", "TokenFunctions", "signing-keys.json"), DevelopmentKeyFile.Resolve(" ", ContentRoot, "TokenFunctions", LocalData));
        Assert.Equal(Path.Combine(LocalData, "token-service", "a_b", "signing-keys.json"), DevelopmentKeyFile.Resolve(null, ContentRoot, "a/b", LocalData));
        Assert.Equal(Path.Combine(LocalData, "token-service", "app", "signing-keys.json"), DevelopmentKeyFile.Resolve(null, ContentRoot, "..", LocalData));
    }

    [Fact]
    public void The_default_is_one_file_per_issuer()
    {
        var first = DevelopmentKeyFile.Resolve(null, ContentRoot, "TokenService.Server", LocalData, issuer: "http://127.0.0.1:7071");
        var second = DevelopmentKeyFile.Resolve(null, ContentRoot, "TokenService.Server", LocalData, issuer: "http://127.0.0.1:8080");
        Assert.Equal(Path.Combine(LocalData, "token-service", "TokenService.Server", "http_127.0.0.1_7071", "signing-keys.json"), first);
        Assert.Equal(Path.Combine(LocalData, "token-service", "TokenService.Server", "http_127.0.0.1_8080", "signing-keys.json"), second);
        Assert.Equal(Path.Combine(ContentRoot, ".devkeys", "https_tokens.example_tenant_a", "signing-keys.json"), DevelopmentKeyFile.Resolve(null, ContentRoot, "App", "", issuer: "https://tokens.example/tenant/a/"));

        // A configured path is the operator's choice and stays as configured.
        Assert.Equal(Path.Combine(ContentRoot, "k.json"), DevelopmentKeyFile.Resolve("k.json", ContentRoot, "App", LocalData, issuer: "http://127.0.0.1:7071"));

        // Long issuers stay apart although they are cut to a short folder name.
        var longA = DevelopmentKeyFile.IssuerFolderName("https://tokens.example/" + new string('a', 100) + "/one");
        var longB = DevelopmentKeyFile.IssuerFolderName("https://tokens.example/" + new string('a', 100) + "/two");
        Assert.NotEqual(longA, longB);
        Assert.True(longA.Length <= 64, longA);
    }

    [Fact]
    public void The_default_is_the_current_users_local_application_data()
    {
        var data = Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.DoNotVerify);
        var expected = Path.IsPathFullyQualified(data)
            ? Path.Combine(data, "token-service", "TokenService.Server", "signing-keys.json")
            : Path.Combine(ContentRoot, ".devkeys", "signing-keys.json");
        Assert.Equal(expected, DevelopmentKeyFile.Resolve(null, ContentRoot, "TokenService.Server"));
    }

    [Fact]
    public void Without_a_local_application_data_folder_the_key_stays_under_the_content_root()
    {
        Assert.Equal(Path.Combine(ContentRoot, ".devkeys", "signing-keys.json"), DevelopmentKeyFile.Resolve(null, ContentRoot, "App", ""));
    }

    [Theory]
    [InlineData(HostKind.Standalone)]
    [InlineData(HostKind.Functions)]
    public void Both_hosts_resolve_a_relative_setting_against_their_content_root_and_default_outside_it(HostKind kind)
    {
        foreach (var configured in new[] { Path.Combine("relative", "keys.json"), null })
        {
            var settings = new Dictionary<string, string?> { ["Keys:DevelopmentKeyPath"] = configured };
            using var host = Build(kind, settings);
            var environment = host.Services.GetRequiredService<IHostEnvironment>();
            var resolved = host.Services.GetRequiredService<IOptions<KeysOptions>>().Value.DevelopmentKeyPath;
            var issuer = host.Services.GetRequiredService<IOptions<TokenServiceOptions>>().Value.Issuer;
            Assert.Equal(DevelopmentKeyFile.Resolve(configured, environment.ContentRootPath, environment.ApplicationName, issuer: issuer), resolved);
            if (configured is not null)
            {
                Assert.Equal(Path.Combine(environment.ContentRootPath, "relative", "keys.json"), resolved);
            }
            else
            {
                Assert.EndsWith(Path.Combine("token-service", environment.ApplicationName, DevelopmentKeyFile.IssuerFolderName(issuer!), "signing-keys.json"), resolved, StringComparison.Ordinal);
            }
        }
    }

    /// <summary>
    /// The bug this guards: the dll started from one folder wrote <c>.devkeys</c> there, started from another it made
    /// a second, different key. Now both starts use the one file under the local application data.
    /// </summary>
    [Fact]
    public async Task The_built_host_started_from_two_folders_uses_one_key_file_outside_both()
    {
        var scratch = Path.Combine(Path.GetTempPath(), "ts-keyhome-" + Guid.NewGuid().ToString("N"));
        var data = Path.Combine(scratch, "data");
        var first = Directory.CreateDirectory(Path.Combine(scratch, "first")).FullName;
        var second = Directory.CreateDirectory(Path.Combine(scratch, "second")).FullName;
        try
        {
            var firstLog = await StartUntilListeningAsync(first, data);
            var secondLog = await StartUntilListeningAsync(second, data);

            var keyFile = Path.Combine(data, "token-service", "TokenService.Server", "http_127.0.0.1_7071", "signing-keys.json");
            Assert.True(File.Exists(keyFile), "no key file at " + keyFile + ":\n" + firstLog);
            Assert.Contains("Created a local development signing key in " + keyFile, firstLog, StringComparison.Ordinal);
            Assert.DoesNotContain("Created a local development signing key", secondLog, StringComparison.Ordinal);
            Assert.Contains("from " + keyFile, secondLog, StringComparison.Ordinal);
            Assert.False(Directory.Exists(Path.Combine(first, ".devkeys")));
            Assert.False(Directory.Exists(Path.Combine(second, ".devkeys")));
        }
        finally
        {
            Directory.Delete(scratch, recursive: true);
        }
    }

    /// <summary>
    /// The bug this guards: two hosts of one user on different ports (two issuers) shared one key
    /// file, so each one's key changes rewrote the other's JWKS. Now each issuer has its own file.
    /// </summary>
    [Fact]
    public async Task Two_built_hosts_with_different_issuers_keep_separate_key_files()
    {
        var scratch = Path.Combine(Path.GetTempPath(), "ts-keyissuer-" + Guid.NewGuid().ToString("N"));
        var data = Path.Combine(scratch, "data");
        var folder = Directory.CreateDirectory(Path.Combine(scratch, "run")).FullName;
        try
        {
            var firstLog = await StartUntilListeningAsync(folder, data, issuer: "http://127.0.0.1:7071");
            var secondLog = await StartUntilListeningAsync(folder, data, issuer: "http://127.0.0.1:7072");

            var firstFile = Path.Combine(data, "token-service", "TokenService.Server", "http_127.0.0.1_7071", "signing-keys.json");
            var secondFile = Path.Combine(data, "token-service", "TokenService.Server", "http_127.0.0.1_7072", "signing-keys.json");
            Assert.Contains("Created a local development signing key in " + firstFile, firstLog, StringComparison.Ordinal);
            Assert.Contains("Created a local development signing key in " + secondFile, secondLog, StringComparison.Ordinal);
            Assert.DoesNotContain(firstFile, secondLog, StringComparison.Ordinal);
            Assert.NotEqual(await File.ReadAllTextAsync(firstFile), await File.ReadAllTextAsync(secondFile));
        }
        finally
        {
            Directory.Delete(scratch, recursive: true);
        }
    }

    /// <summary>Starts the built standalone host in Development from <paramref name="workingDirectory"/>, stops it once it has loaded its signing key, returns its log.</summary>
    private static async Task<string> StartUntilListeningAsync(string workingDirectory, string localData, string? issuer = null)
    {
        var dll = BuiltHosts.ServerDll;
        Assert.True(File.Exists(dll), dll + " is not built");
        var start = new ProcessStartInfo("dotnet", [dll, "--urls", "http://127.0.0.1:0"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = workingDirectory,
        };
        start.Environment["ASPNETCORE_ENVIRONMENT"] = "Development";
        start.Environment.Remove("Keys__DevelopmentKeyPath");
        start.Environment.Remove("TokenService__Issuer");
        if (issuer is not null)
        {
            start.Environment["TokenService__Issuer"] = issuer;
        }

        start.Environment["XDG_DATA_HOME"] = localData; // Linux
        start.Environment["LOCALAPPDATA"] = localData;  // Windows
        start.Environment["Logging__LogLevel__Default"] = "Information";

        using var process = Process.Start(start)!;
        var log = new System.Text.StringBuilder();
        var listening = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        void OnLine(object? sender, DataReceivedEventArgs e)
        {
            if (e.Data is null)
            {
                return;
            }

            lock (log)
            {
                log.AppendLine(e.Data);
            }

            // The key is loaded (or created, then loaded) by the rotation check right after start.
            if (e.Data.Contains("local development signing key(s) from", StringComparison.Ordinal))
            {
                listening.TrySetResult();
            }
        }

        process.OutputDataReceived += OnLine;
        process.ErrorDataReceived += OnLine;
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            await Task.WhenAny(listening.Task, process.WaitForExitAsync(), Task.Delay(TimeSpan.FromSeconds(60)));
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }

            await process.WaitForExitAsync();
        }

        lock (log)
        {
            Assert.True(listening.Task.IsCompletedSuccessfully, "the host did not load its key:\n" + log);
            return log.ToString();
        }
    }

    private static IHost Build(HostKind kind, Dictionary<string, string?> settings)
    {
        if (kind == HostKind.Functions)
        {
            return FunctionsAppFactory.Build("Development", settings);
        }

        return Server.TokenServiceHost.Build(["--environment", "Development", "--urls", "http://127.0.0.1:0"], builder => builder.Configuration.AddInMemoryCollection(settings));
    }
}
