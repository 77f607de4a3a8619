using System.Security.Cryptography;
using System.Text;
using TokenService.Jwt;

namespace TokenService.Azure.Tables;

/// <summary>
/// Key helpers: Table keys forbid / \ # ? and control characters and are at most 1 KiB. Filters are built with
/// <c>TableClient.CreateQueryFilter</c>, which quotes and escapes values itself.
/// </summary>
public static class TableKeys
{
    /// <summary>True when <paramref name="value"/> can be a PartitionKey or RowKey as it is.</summary>
    public static bool IsValidKey(string value) =>
        value.Length <= 512 && !value.Any(c => c is '/' or '\\' or '#' or '?' || char.IsControl(c));

    /// <summary>A key-safe, fixed-length stand-in for any value: base64url of its SHA-256.</summary>
    public static string Hash(string value) => Base64UrlEncoding.Encode(SHA256.HashData(Encoding.UTF8.GetBytes(value)));
}
