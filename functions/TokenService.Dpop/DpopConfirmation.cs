using System.Text.Json;
using Microsoft.IdentityModel.JsonWebTokens;

namespace TokenService.Dpop;

/// <summary>The <c>cnf.jkt</c> confirmation of a DPoP-bound access token (RFC 9449 §6.1).</summary>
public static class DpopConfirmation
{
    /// <summary>The <c>jkt</c> of a validated token, or null when it carries no <c>cnf</c> object with a string <c>jkt</c>.</summary>
    public static string? ReadJkt(JsonWebToken token) =>
        token.TryGetPayloadValue<JsonElement>("cnf", out var cnf)
        && cnf.ValueKind == JsonValueKind.Object
        && cnf.TryGetProperty("jkt", out var jkt)
        && jkt.ValueKind == JsonValueKind.String
            ? jkt.GetString()
            : null;
}
