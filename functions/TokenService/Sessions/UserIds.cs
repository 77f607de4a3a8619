using System.Diagnostics.CodeAnalysis;

namespace TokenService.Sessions;

/// <summary>
/// The one rule for user ids, applied wherever an id enters: the token exchange (the IdP's user id claim and
/// <c>sub</c>), force logout (path and form) and IdP events. An id one of them accepts is an id the others accept,
/// so that every session the exchange opens can be ended by an admin or an IdP event.
/// </summary>
/// <remarks>
/// Refused: empty or blank ids; more than <see cref="MaxLength"/> UTF-16 code units; control characters (C0, DEL
/// and C1, which includes NEL); the Unicode line and paragraph separators U+2028/U+2029; the Bidi_Control
/// characters of UAX #9 (U+061C, U+200E/U+200F, the embeddings and overrides U+202A–U+202E, the isolates
/// U+2066–U+2069), which make an id read differently from what it is (CVE-2021-42574, "Trojan Source"); and
/// unpaired surrogates, which have no UTF-8 form (RFC 3629 §3), so two such ids would hash to one partition.
/// Everything else, <c>/</c>, <c>%</c>, <c>+</c>, spaces and non-ASCII letters included, is a valid id.
/// </remarks>
public static class UserIds
{
    /// <summary>The longest user id, in UTF-16 code units.</summary>
    public const int MaxLength = 256;

    /// <summary>True when <paramref name="userId"/> is a valid user id.</summary>
    public static bool IsValid([NotNullWhen(true)] string? userId) => Problem(userId) is null;

    /// <summary>Why <paramref name="userId"/> is refused, as a sentence for an error description; null when it is valid.</summary>
    public static string? Problem(string? userId)
    {
        if (string.IsNullOrWhiteSpace(userId))
        {
            return "The user id is empty.";
        }

        if (userId.Length > MaxLength)
        {
            return $"The user id is longer than {MaxLength} characters.";
        }

        for (var i = 0; i < userId.Length; i++)
        {
            var c = userId[i];
            if (char.IsHighSurrogate(c) && i + 1 < userId.Length && char.IsLowSurrogate(userId[i + 1]))
            {
                i++;
                continue;
            }

            if (char.IsSurrogate(c))
            {
                return "The user id holds an unpaired surrogate.";
            }

            if (IsRefused(c))
            {
                return "The user id holds a control, line separator or bidirectional formatting character.";
            }
        }

        return null;
    }

    private static bool IsRefused(char c) =>
        char.IsControl(c) // C0, DEL, C1
        || c is '\u2028' or '\u2029' // line and paragraph separators
        || c is '\u061c' or '\u200e' or '\u200f' // Arabic letter mark, left-to-right and right-to-left marks
        || c is >= '\u202a' and <= '\u202e' // bidirectional embeddings and overrides
        || c is >= '\u2066' and <= '\u2069'; // bidirectional isolates
}
