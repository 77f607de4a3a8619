using SampleApi;

// dotnet run --project samples/SampleApi   (http://127.0.0.1:5080, Development defaults: see SampleApiOptions)
var app = SampleApiHost.Build(args);
await app.RunAsync();
