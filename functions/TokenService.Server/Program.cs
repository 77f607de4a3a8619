using TokenService.Server;

var app = TokenServiceHost.Build(args);
await app.RunAsync();
