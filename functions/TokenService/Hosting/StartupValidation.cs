using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace TokenService.Hosting;

/// <summary>
/// Start-up for both hosts' Program.cs: every option is validated before the host starts (so nothing uses a bad
/// setting and the host does not log a failed start with a stack trace), and a bad configuration ends the process
/// with exit code 1 and one line per bad setting, all of them at once (each validator names the key to fix).
/// </summary>
public static class StartupValidation
{
    public const int ConfigurationErrorExitCode = 1;

    /// <summary>Builds the host, validates every option, then runs it; returns the process exit code.</summary>
    public static async Task<int> RunAsync(Func<IHost> build, TextWriter errors, CancellationToken cancellationToken = default)
    {
        IHost host;
        try
        {
            host = build();
            host.Services.GetService<IStartupValidator>()?.Validate();
        }
        catch (Exception ex) when (Failures(ex) is { Count: > 0 } failures)
        {
            await WriteAsync(errors, failures);
            return ConfigurationErrorExitCode;
        }
        catch (DirectoryNotFoundException ex)
        {
            // The file provider's message is the bare path; say what it is and which setting chose it.
            await WriteAsync(errors, [$"The content root {ex.Message} does not exist (set by --contentRoot or ASPNETCORE_CONTENTROOT; a relative path is taken from the host's own folder)."]);
            return ConfigurationErrorExitCode;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException or ArgumentException or InvalidOperationException)
        {
            // Building the host failed on its own settings (a content root that does not exist, an unreadable
            // appsettings file, a malformed URL): the message names what is wrong; its stack trace helps no operator.
            await WriteAsync(errors, [ex.Message]);
            return ConfigurationErrorExitCode;
        }

        using (host)
        {
            try
            {
                await host.StartAsync(cancellationToken);
            }
            catch (IOException ex) when (ex.InnerException is AddressInUseException)
            {
                // Kestrel's message names the address ("Failed to bind to address http://127.0.0.1:7071: address
                // already in use."); the operator needs that and how to choose another, not the stack trace.
                // Stop what did start (the background services), so that none fails later on a disposed host.
                await host.StopAsync(CancellationToken.None);
                await errors.WriteLineAsync(AddressInUse(ex.Message));
                await errors.FlushAsync();
                return ConfigurationErrorExitCode;
            }

            await host.WaitForShutdownAsync(cancellationToken);
        }

        return 0;
    }

    /// <summary>The one line for an address another process holds: what failed and the two ways out.</summary>
    public static string AddressInUse(string kestrelMessage) =>
        $"The token service cannot start: {kestrelMessage.ReplaceLineEndings(" ").TrimEnd('.')}. Another process listens there (if it is the token service, use it), "
        + "or choose another address with --urls together with the issuer that matches it, e.g. --urls http://127.0.0.1:7072 with TokenService__Issuer=http://127.0.0.1:7072.";

    /// <summary>The messages of every options validation failure in <paramref name="exception"/>, or none.</summary>
    public static IReadOnlyList<string> Failures(Exception exception)
    {
        var messages = new List<string>();
        Collect(exception, messages);
        return messages.Distinct(StringComparer.Ordinal).ToList();
    }

    private static void Collect(Exception exception, List<string> messages)
    {
        switch (exception)
        {
            case OptionsValidationException validation:
                messages.AddRange(validation.Failures);
                break;
            case InvalidOperationException binding when binding.Message.StartsWith("Failed to convert configuration value", StringComparison.Ordinal):
                // The configuration binder's message names the key and the type it wanted (e.g. a TimeSpan).
                messages.Add(binding.Message);
                break;
            case AggregateException aggregate:
                foreach (var inner in aggregate.InnerExceptions)
                {
                    Collect(inner, messages);
                }

                break;
            default:
                if (exception.InnerException is { } innerException)
                {
                    Collect(innerException, messages);
                }

                break;
        }
    }

    private static async Task WriteAsync(TextWriter errors, IReadOnlyList<string> failures)
    {
        await errors.WriteLineAsync($"The token service cannot start: {failures.Count} setting(s) to fix.");
        foreach (var failure in failures)
        {
            await errors.WriteLineAsync("  " + failure.ReplaceLineEndings(" "));
        }

        await errors.FlushAsync();
    }
}
