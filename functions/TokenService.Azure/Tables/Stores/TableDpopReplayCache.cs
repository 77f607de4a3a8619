using TokenService.Dpop;

namespace TokenService.Azure.Tables.Stores;

/// <summary>
/// The DPoP <c>jti</c> replay cache in the token-marker table, so every instance of a scaled-out app sees every proof
/// (RFC 9449 §11.1): one insert-if-absent per proof on the marker of kind <c>dpop</c>; a 409 means the proof was used,
/// unless the stored marker carries this insert's own write id (a retried insert whose first try was stored). Expired
/// markers go with the table's hourly purge; an expired one still present is taken over, not read as a replay.
/// </summary>
public sealed class TableDpopReplayCache(TableTokenMarkerStore markers) : IDpopReplayCache
{
    private const string Kind = "dpop";

    public ValueTask<bool> TryAddAsync(string key, DateTimeOffset expiresAt, CancellationToken cancellationToken) =>
        markers.TryAddMarkerAsync(Kind, key, expiresAt, cancellationToken);
}
