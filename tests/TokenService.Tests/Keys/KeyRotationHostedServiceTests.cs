using System.Threading.Channels;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using TokenService.Configuration;
using TokenService.Keys;
using TokenService.Server;

namespace TokenService.Tests.Keys;

/// <summary>The standalone host's rotation check runs on the host's TimeProvider, so moving a fake clock runs it.</summary>
public sealed class KeyRotationHostedServiceTests
{
    private static readonly DateTimeOffset Start = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    [Fact]
    public async Task The_check_runs_at_start_and_again_each_time_the_clock_reaches_the_check_interval()
    {
        var time = new FakeTimeProvider(Start);
        var keys = new RecordingKeys(time);
        var options = Options.Create(new KeysOptions { CheckInterval = TimeSpan.FromHours(1) });
        using var service = new KeyRotationHostedService(keys, options, time, NullLogger<KeyRotationHostedService>.Instance);
        await service.StartAsync(CancellationToken.None);
        try
        {
            Assert.Equal(Start, await keys.NextCheckAsync());

            // Each check is awaited before the clock moves on, so the time it saw is the tick that ran it.
            time.Advance(TimeSpan.FromMinutes(59));
            time.Advance(TimeSpan.FromMinutes(1));
            Assert.Equal(Start.AddHours(1), await keys.NextCheckAsync());
            time.Advance(TimeSpan.FromHours(1));
            Assert.Equal(Start.AddHours(2), await keys.NextCheckAsync());
        }
        finally
        {
            await service.StopAsync(CancellationToken.None);
        }

        Assert.False(keys.HasMoreChecks, "a check ran that no tick called for");
    }

    /// <summary>Reports each rotation check, with the time it ran at.</summary>
    private sealed class RecordingKeys(TimeProvider time) : ISigningKeyService
    {
        private readonly Channel<DateTimeOffset> _checks = Channel.CreateUnbounded<DateTimeOffset>();

        public bool HasMoreChecks => _checks.Reader.TryPeek(out _);

        /// <summary>The next check's time. The timeout only keeps a broken timer from hanging the run; it is no pacing.</summary>
        public async Task<DateTimeOffset> NextCheckAsync() => await _checks.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(60));

        public Task<KeyRotationResult> RunRotationCheckAsync(CancellationToken cancellationToken)
        {
            _checks.Writer.TryWrite(time.GetUtcNow());
            return Task.FromResult(new KeyRotationResult(false, "no change"));
        }

        public ValueTask<SigningKeySet> GetKeySetAsync(CancellationToken cancellationToken) => throw new NotSupportedException();

        public ValueTask<byte[]> SignAsync(SigningKey key, ReadOnlyMemory<byte> signingInput, CancellationToken cancellationToken) => throw new NotSupportedException();

        public ValueTask<SignedInput> SignWithActiveKeyAsync(Func<SigningKey, ReadOnlyMemory<byte>> buildSigningInput, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task<KeyRotationResult> RotateNowAsync(bool immediate, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task<KeyRotationResult> RevokeAsync(string kid, CancellationToken cancellationToken) => throw new NotSupportedException();
    }
}
