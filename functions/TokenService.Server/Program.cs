using TokenService.Hosting;
using TokenService.Server;

// A bad setting ends the process with exit code 1 and one line per bad setting (no stack trace).
return await StartupValidation.RunAsync(() => TokenServiceHost.Build(args), Console.Error);
