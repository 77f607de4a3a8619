using System.Diagnostics;
using System.Diagnostics.Metrics;
using TokenService.Keys;

namespace TokenService.Diagnostics;

/// <summary>
/// Decorates the signing key provider (local key or Key Vault) with telemetry, so that no provider carries it: the
/// signing latency histogram, the rotation check's span and audit record, and two gauges read from the cached key set
/// (seconds until the pending key activates; age of the active key), for the "key not rotated on schedule" alert.
/// </summary>
public sealed class InstrumentedSigningKeyService : ISigningKeyService, IDisposable
{
    private readonly ISigningKeyService _inner;
    private readonly bool _ownsInner;
    private readonly TimeProvider _time;
    private readonly IAuditSink _audit;
    private readonly TokenServiceMetrics _metrics;

    public InstrumentedSigningKeyService(ISigningKeyService inner, bool ownsInner, TimeProvider time, IAuditSink audit, TokenServiceMetrics metrics)
    {
        _inner = inner;
        _ownsInner = ownsInner;
        _time = time;
        _audit = audit;
        _metrics = metrics;

        // Observable instruments hold a callback on this instance, so they live on the meter of this service provider
        // (IMeterFactory, disposed with it), which would otherwise keep every host of the process alive.
        _metrics.Meter.CreateObservableGauge("tokenservice.keys.next_activation", ObserveNextActivation, "s",
            "Seconds until the pending signing key activates; absent when no key is pending.");
        _metrics.Meter.CreateObservableGauge("tokenservice.keys.active_age", ObserveActiveAge, "s",
            "Seconds since the active signing key started signing.");
    }

    /// <summary>The decorated provider.</summary>
    public ISigningKeyService Inner => _inner;

    public ValueTask<SigningKeySet> GetKeySetAsync(CancellationToken cancellationToken) => _inner.GetKeySetAsync(cancellationToken);

    public ValueTask<byte[]> SignAsync(SigningKey key, ReadOnlyMemory<byte> signingInput, CancellationToken cancellationToken) =>
        _metrics.SigningDuration.Enabled ? SignMeasuredAsync(key, signingInput, cancellationToken) : _inner.SignAsync(key, signingInput, cancellationToken);

    // Forwarded, never left to the interface's default: with several vaults the provider chooses the key and fails
    // over to another vault, which the default (active key, then SignAsync) would bypass.
    public ValueTask<SignedInput> SignWithActiveKeyAsync(Func<SigningKey, ReadOnlyMemory<byte>> buildSigningInput, CancellationToken cancellationToken) =>
        _metrics.SigningDuration.Enabled ? SignWithActiveKeyMeasuredAsync(buildSigningInput, cancellationToken) : _inner.SignWithActiveKeyAsync(buildSigningInput, cancellationToken);

    public async Task<KeyRotationResult> RunRotationCheckAsync(CancellationToken cancellationToken)
    {
        using var activity = TokenServiceDiagnostics.Source.StartActivity(TokenServiceDiagnostics.Spans.KeyRotationCheck);
        try
        {
            var result = await _inner.RunRotationCheckAsync(cancellationToken);
            activity?.SetTag("tokenservice.keys.changed", result.Changed);
            if (result.Changed)
            {
                _audit.Record(new AuditEvent(AuditEventKind.KeyRotated, AuditEvent.SystemActor, "changed", Reason: result.Summary));
            }

            return result;
        }
        catch (Exception ex)
        {
            TokenServiceDiagnostics.RecordError(activity, ex);
            throw;
        }
    }

    public Task<KeyRotationResult> RotateNowAsync(bool immediate, CancellationToken cancellationToken) => _inner.RotateNowAsync(immediate, cancellationToken);

    public Task<KeyRotationResult> RevokeAsync(string kid, CancellationToken cancellationToken) => _inner.RevokeAsync(kid, cancellationToken);

    public void Dispose()
    {
        if (_ownsInner && _inner is IDisposable disposable)
        {
            disposable.Dispose();
        }
    }

    private async ValueTask<byte[]> SignMeasuredAsync(SigningKey key, ReadOnlyMemory<byte> signingInput, CancellationToken cancellationToken)
    {
        var start = Stopwatch.GetTimestamp();
        string? error = null;
        try
        {
            return await _inner.SignAsync(key, signingInput, cancellationToken);
        }
        catch (Exception ex)
        {
            error = TokenServiceDiagnostics.ErrorType(ex);
            throw;
        }
        finally
        {
            var tags = new TagList { { TokenServiceMetrics.Tags.Algorithm, key.Algorithm } };
            if (error is not null)
            {
                tags.Add(TokenServiceMetrics.Tags.ErrorType, error);
            }

            _metrics.SigningDuration.Record(TokenServiceMetrics.SecondsSince(start), tags);
        }
    }

    private async ValueTask<SignedInput> SignWithActiveKeyMeasuredAsync(Func<SigningKey, ReadOnlyMemory<byte>> buildSigningInput, CancellationToken cancellationToken)
    {
        var start = Stopwatch.GetTimestamp();
        string? error = null;
        string? algorithm = null;
        try
        {
            var signed = await _inner.SignWithActiveKeyAsync(buildSigningInput, cancellationToken);
            algorithm = signed.Key.Algorithm;
            return signed;
        }
        catch (Exception ex)
        {
            error = TokenServiceDiagnostics.ErrorType(ex);
            throw;
        }
        finally
        {
            var tags = new TagList();
            if (algorithm is not null)
            {
                tags.Add(TokenServiceMetrics.Tags.Algorithm, algorithm);
            }

            if (error is not null)
            {
                tags.Add(TokenServiceMetrics.Tags.ErrorType, error);
            }

            _metrics.SigningDuration.Record(TokenServiceMetrics.SecondsSince(start), tags);
        }
    }

    // Gauges read only a cached key set: a callback never waits for Key Vault (an export would stall behind it).
    private IEnumerable<Measurement<double>> ObserveNextActivation()
    {
        if (CachedKeySet() is not { } set)
        {
            return [];
        }

        var now = _time.GetUtcNow();
        var next = set.Published.Where(k => k.State == SigningKeyState.Pending && k.ActivatesAt is not null).Min(k => k.ActivatesAt);
        return next is { } at ? [new Measurement<double>(Math.Max(0, (at - now).TotalSeconds))] : [];
    }

    private IEnumerable<Measurement<double>> ObserveActiveAge()
    {
        if (CachedKeySet() is not { Active: { } active })
        {
            return [];
        }

        var since = active.ActivatesAt ?? active.CreatedAt;
        return [new Measurement<double>(Math.Max(0, (_time.GetUtcNow() - since).TotalSeconds))];
    }

    private SigningKeySet? CachedKeySet()
    {
        try
        {
            var pending = _inner.GetKeySetAsync(CancellationToken.None);
            return pending.IsCompletedSuccessfully ? pending.Result : null;
        }
        catch (DependencyUnavailableException)
        {
            return null;
        }
    }
}
