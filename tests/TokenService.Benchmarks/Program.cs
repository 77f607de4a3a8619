using BenchmarkDotNet.Running;
using TokenService.Benchmarks;

if (args.Length > 0 && args[0] == "load")
{
    return await LoadClient.RunAsync(args[1..]);
}

if (args.Length > 0 && args[0] == "preload")
{
    return await TablePreload.RunAsync(args[1..]);
}

if (args.Length > 0 && args[0] == "vaults")
{
    return await VaultThroughput.RunAsync(args[1..]);
}

if (args.Length > 0 && args[0] == "vault-latency")
{
    return await VaultLatency.RunAsync(args[1..]);
}

if (args.Length > 0 && args[0] == "sign")
{
    return SignCost.Run(args[1..]);
}

if (args.Length > 0 && args[0] == "ssf-latency")
{
    return await RevocationReach.LatencyAsync(args[1..]);
}

if (args.Length > 0 && args[0] == "ssf-load")
{
    return await RevocationReach.LoadAsync(args[1..]);
}

if (args.Length > 0 && args[0] == "interleaved")
{
    await InterleavedRatios.RunAsync();
    return 0;
}

BenchmarkSwitcher.FromAssembly(typeof(LoadClient).Assembly).Run(args);
return 0;
