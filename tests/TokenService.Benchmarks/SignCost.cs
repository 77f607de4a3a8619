using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;

namespace TokenService.Benchmarks;

/// <summary>
/// CPU time of one raw RS256 signature (RSA-2048, PKCS#1 v1.5, an input the size of an access token's header.payload),
/// on one thread: the part of a refresh that is the signature, read in the same run as the host's CPU per refresh so
/// that "beyond the signature" is a difference of two figures from the same machine at the same time.
/// <c>dotnet run -c Release --project tests/TokenService.Benchmarks -- sign --count 3000</c> prints
/// <c>sign N µs/op (CPU)</c>.
/// </summary>
internal static class SignCost
{
    public static int Run(string[] args)
    {
        var i = Array.IndexOf(args, "--count");
        var count = i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : 3000;
        using var rsa = RSA.Create(2048);
        var input = new byte[900];
        RandomNumberGenerator.Fill(input);
        for (var warmup = 0; warmup < 200; warmup++)
        {
            rsa.SignData(input, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        }

        // Process CPU (utime + stime, 10 ms ticks): the signing thread is the only busy one here.
        using var self = Process.GetCurrentProcess();
        self.Refresh();
        var before = self.TotalProcessorTime;
        for (var n = 0; n < count; n++)
        {
            rsa.SignData(input, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        }

        self.Refresh();
        var perSign = (self.TotalProcessorTime - before).TotalMicroseconds / count;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"sign {perSign:F1} us/op (CPU)"));
        return 0;
    }
}
