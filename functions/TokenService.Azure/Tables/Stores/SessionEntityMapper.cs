using System.Text.Json;
using Azure;
using Azure.Data.Tables;
using TokenService.Sessions;

namespace TokenService.Azure.Tables.Stores;

/// <summary>
/// SessionRecord ⇄ entity. Times are Edm.Int64 UTC ticks (exact, and comparable in filters); lists are JSON
/// strings. Nothing secret: refresh tokens are SHA-256 hashes already. Absent optional values are left out of
/// the entity rather than stored as nulls, as rows written before the SDK had them.
/// </summary>
internal static class SessionEntityMapper
{
    public const string UserRowKey = "!user";

    /// <summary>Row keys of redeemed ID tokens (<see cref="IdTokenRedemption"/>) in the user's partition: this prefix and the replay key (base64url).</summary>
    private const string RedemptionRowPrefix = "!idt.";

    public static TableEntity RedemptionEntity(string partition, IdTokenRedemption redemption) =>
        new(partition, RedemptionRowPrefix + redemption.ReplayKey) { ["PurgeAt"] = redemption.ExpiresAt.UtcTicks };

    /// <summary>The user row's column of its latest redemptions (<see cref="UserSessionIndex.RecentRedemptions"/>).</summary>
    public const string RecentRedemptionsColumn = "Redeemed";

    /// <summary>The replay key of a redemption row's key; null for any other row.</summary>
    public static string? RedeemedReplayKey(string rowKey) =>
        rowKey.StartsWith(RedemptionRowPrefix, StringComparison.Ordinal) ? rowKey[RedemptionRowPrefix.Length..] : null;

    /// <summary>The user row's column holding the user's index (<see cref="UserSessionIndex"/>); absent on rows written without one.</summary>
    public const string IndexColumn = "Index";

    /// <summary>Format version of <see cref="IndexColumn"/> and <see cref="RecentRedemptionsColumn"/>: "1", then ";key.ticks" per entry (keys are base64url).</summary>
    private const string ListFormat = "1";

    public static string FormatIndex(IReadOnlyList<IndexedSession> index) =>
        FormatList(index.Select(s => (s.SessionId, s.AbsoluteExpiresAt)), index.Count);

    public static string FormatRedemptions(IReadOnlyList<IdTokenRedemption> redemptions) =>
        FormatList(redemptions.Select(r => (r.ReplayKey, r.ExpiresAt)), redemptions.Count);

    /// <summary>The index in <paramref name="text"/>, or null when it is absent or not in a format this version writes (then the partition decides).</summary>
    public static IReadOnlyList<IndexedSession>? ParseIndex(string? text) =>
        ParseList(text, SessionIds.IsWellFormed, (sid, at) => new IndexedSession(sid, at));

    /// <summary>The redemptions in <paramref name="text"/>; null when absent or not in this format (a cache: nothing is lost).</summary>
    public static IReadOnlyList<IdTokenRedemption>? ParseRedemptions(string? text) =>
        ParseList(text, static key => key.Length > 0, (key, at) => new IdTokenRedemption(key, at));

    private static string FormatList(IEnumerable<(string Key, DateTimeOffset At)> entries, int count)
    {
        var text = new System.Text.StringBuilder(ListFormat, ListFormat.Length + (count * 64));
        foreach (var (key, at) in entries)
        {
            text.Append(';').Append(key).Append('.').Append(at.UtcTicks.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        return text.ToString();
    }

    private static T[]? ParseList<T>(string? text, Func<string, bool> isKey, Func<string, DateTimeOffset, T> entry)
    {
        var parts = text?.Split(';');
        if (parts is null || parts[0] != ListFormat)
        {
            return null;
        }

        var list = new T[parts.Length - 1];
        for (var i = 1; i < parts.Length; i++)
        {
            var dot = parts[i].IndexOf('.', StringComparison.Ordinal);
            if (dot < 0
                || !isKey(parts[i][..dot])
                || !long.TryParse(parts[i].AsSpan(dot + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var ticks)
                || ticks > DateTimeOffset.MaxValue.UtcTicks)
            {
                return null;
            }

            list[i - 1] = entry(parts[i][..dot], new DateTimeOffset(ticks, TimeSpan.Zero));
        }

        return list;
    }

    public static TableEntity ToEntity(SessionRecord s)
    {
        var e = new TableEntity(SessionIds.PartitionKeyOf(s.SessionId)!, s.SessionId)
        {
            ["UserId"] = s.UserId,
            ["Subject"] = s.Subject,
            ["ClientId"] = s.ClientId,
            ["Scope"] = s.Scope,
            ["Audiences"] = Json(s.Audiences),
            ["CreatedAt"] = s.CreatedAt.UtcTicks,
            ["LastActivityAt"] = s.LastActivityAt.UtcTicks,
            ["IdleExpiresAt"] = s.IdleExpiresAt.UtcTicks,
            ["AbsoluteExpiresAt"] = s.AbsoluteExpiresAt.UtcTicks,
            ["Amr"] = Json(s.Amr),
            ["RefreshTokenHash"] = s.RefreshTokenHash,
            ["RefreshTokenExpiresAt"] = s.RefreshTokenExpiresAt.UtcTicks,
            ["RetiredRefreshTokenHashes"] = Json(s.RetiredRefreshTokenHashes),
            ["Generation"] = s.Generation,
            ["WriteId"] = s.WriteId,
            ["PurgeAt"] = s.PurgeAt.UtcTicks,
        };
        SetIfPresent(e, "AuthTime", s.AuthTime?.UtcTicks);
        SetIfPresent(e, "Acr", s.Acr);
        SetIfPresent(e, "PreviousRefreshTokenHash", s.PreviousRefreshTokenHash);
        SetIfPresent(e, "PreviousRotatedAt", s.PreviousRotatedAt?.UtcTicks);
        SetIfPresent(e, "RevokedAt", s.RevokedAt?.UtcTicks);
        SetIfPresent(e, "RevocationReason", s.RevocationReason);
        SetIfPresent(e, "DpopJkt", s.DpopJkt);
        SetIfPresent(e, "Device", s.Device);
        return e;
    }

    public static SessionRecord FromEntity(TableEntity e) => new()
    {
        SessionId = e.RowKey,
        UserId = e.GetString("UserId")!,
        Subject = e.GetString("Subject")!,
        ClientId = e.GetString("ClientId")!,
        Scope = e.GetString("Scope") ?? string.Empty,
        Audiences = List(e, "Audiences"),
        CreatedAt = Time(e, "CreatedAt"),
        LastActivityAt = Time(e, "LastActivityAt"),
        IdleExpiresAt = Time(e, "IdleExpiresAt"),
        AbsoluteExpiresAt = Time(e, "AbsoluteExpiresAt"),
        AuthTime = OptionalTime(e, "AuthTime"),
        Acr = e.GetString("Acr"),
        Amr = List(e, "Amr"),
        RefreshTokenHash = e.GetString("RefreshTokenHash")!,
        RefreshTokenExpiresAt = Time(e, "RefreshTokenExpiresAt"),
        PreviousRefreshTokenHash = e.GetString("PreviousRefreshTokenHash"),
        PreviousRotatedAt = OptionalTime(e, "PreviousRotatedAt"),
        RetiredRefreshTokenHashes = List(e, "RetiredRefreshTokenHashes"),
        Generation = e.GetInt64("Generation") ?? 0,
        WriteId = e.GetString("WriteId") ?? string.Empty,
        RevokedAt = OptionalTime(e, "RevokedAt"),
        RevocationReason = e.GetString("RevocationReason"),
        DpopJkt = e.GetString("DpopJkt"),
        Device = e.GetString("Device"), // absent on rows written before sessions had it: null, "unknown device"
        PurgeAt = Time(e, "PurgeAt"),
        ETag = ETagOf(e.ETag),
    };

    /// <summary>The ETag as the core keeps it (an opaque string), or null when the service sent none.</summary>
    public static string? ETagOf(ETag etag) => etag == default ? null : etag.ToString();

    private static void SetIfPresent(TableEntity e, string name, object? value)
    {
        if (value is not null)
        {
            e[name] = value;
        }
    }

    private static DateTimeOffset Time(TableEntity e, string name) => new(e.GetInt64(name) ?? 0, TimeSpan.Zero);

    private static DateTimeOffset? OptionalTime(TableEntity e, string name) => e.GetInt64(name) is { } ticks ? new DateTimeOffset(ticks, TimeSpan.Zero) : null;

    /// <summary>"[]", what the serializer writes for an empty list, without running it: most lists are empty.</summary>
    private const string EmptyList = "[]";

    private static string Json(IReadOnlyList<string> list) =>
        list.Count == 0 ? EmptyList : JsonSerializer.Serialize(list, StoreJson.Default.IReadOnlyListString);

    private static IReadOnlyList<string> List(TableEntity e, string name) => e.GetString(name) switch
    {
        null or EmptyList => [],
        var json => JsonSerializer.Deserialize(json, StoreJson.Default.IReadOnlyListString) ?? [],
    };
}

[System.Text.Json.Serialization.JsonSerializable(typeof(IReadOnlyList<string>))]
internal sealed partial class StoreJson : System.Text.Json.Serialization.JsonSerializerContext;
