using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Azure.Core;
using Azure.Core.Pipeline;

namespace TokenService.Azure.Tables;

/// <summary>
/// Shared Key authorization for the Table service ("Authorize with Shared Key", Table service flavour):
/// StringToSign = VERB \n Content-MD5 \n Content-Type \n Date \n CanonicalizedResource, where Date is the
/// x-ms-date value and CanonicalizedResource is /account/path plus ?comp= when present. Signed on every
/// attempt, so retries carry a fresh date.
/// </summary>
internal sealed class TableSharedKeyPolicy(string accountName, byte[] accountKey) : HttpPipelineSynchronousPolicy
{
    public override void OnSendingRequest(HttpMessage message)
    {
        var request = message.Request;
        var date = DateTimeOffset.UtcNow.ToString("r", CultureInfo.InvariantCulture);
        request.Headers.SetValue("x-ms-date", date);
        request.Headers.TryGetValue("Content-Type", out var contentType);
        request.Headers.TryGetValue("Content-MD5", out var contentMd5);
        var stringToSign = string.Join('\n', request.Method.Method, contentMd5 ?? string.Empty, contentType ?? string.Empty, date, CanonicalizedResource(request.Uri.ToUri()));
        request.Headers.SetValue("Authorization", $"SharedKey {accountName}:{Sign(stringToSign)}");
    }

    internal string CanonicalizedResource(Uri uri)
    {
        var resource = "/" + accountName + uri.AbsolutePath;
        foreach (var pair in uri.Query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            if (pair.StartsWith("comp=", StringComparison.OrdinalIgnoreCase))
            {
                resource += "?comp=" + pair["comp=".Length..];
            }
        }

        return resource;
    }

    internal string Sign(string stringToSign) =>
        Convert.ToBase64String(HMACSHA256.HashData(accountKey, Encoding.UTF8.GetBytes(stringToSign)));
}
