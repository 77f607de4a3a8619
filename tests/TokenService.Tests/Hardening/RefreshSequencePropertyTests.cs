using FsCheck;
using FsCheck.Fluent;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using TokenService.Configuration;
using TokenService.Sessions;
using TokenService.Tests.Infrastructure;
using TokenService.Tokens;

namespace TokenService.Tests.Hardening;

/// <summary>
/// Refresh token rotation and reuse detection (docs/api.md, "Refresh token"), as a property: any sequence of refreshes, each with the current or a superseded refresh token and
/// with no proof, the owner's key or a thief's key, on a session opened bound or unbound. The session's binding is
/// the one it opened with, whatever the proofs; the first superseded token ends the session (RFC 9700 §4.14.2) and
/// nothing refreshes after it; the current token of a bound session without its key changes nothing (RFC 9449 §5).
/// The in-memory store: the sequence rules are SessionService's; the stores' part is in SessionStoreContractTests.
/// </summary>
public sealed class RefreshSequencePropertyTests
{
    private const string Owner = "owner-jkt";
    private const string Thief = "thief-jkt";
    private static readonly string?[] Keys = [null, Owner, Thief];

    /// <summary>A session opened bound to <see cref="Owner"/> or unbound, then refresh steps: (superseded?, which superseded, key).</summary>
    private static Gen<(bool Bound, (bool Superseded, int Pick, string? Key)[] Steps)> Sequences { get; } =
        from bound in Gen.Elements(false, true)
        from n in Gen.Choose(1, 12)
        from steps in Gen.ArrayOf(
            from superseded in Gen.Frequency((2, Gen.Constant(false)), (1, Gen.Constant(true)))
            from pick in Gen.Choose(0, 100)
            from key in Gen.Elements(Keys)
            select (superseded, pick, key), n)
        select (bound, steps);

    [Fact]
    public Task Property_no_sequence_of_proofs_binds_a_session_or_survives_a_superseded_token() =>
        CraftedInputTests.CheckAsync(Sequences, async sequence =>
        {
            var time = new FakeTimeProvider(new DateTimeOffset(2026, 11, 30, 12, 0, 0, TimeSpan.Zero));
            var store = new InMemorySessionStore();
            var sessions = new SessionService(store, Options.Create(new TokenServiceOptions { Issuer = Crafted.ServiceIssuer }), time, NullLogger<SessionService>.Instance, TestMetrics.Create());
            var binding = sequence.Bound ? Owner : null;
            var (opened, first, _) = await sessions.OpenAsync(
                new OpenSessionRequest("seq-user", "seq-user", "web", "a", ["api://x"], null, null, [], binding), TestSessions.IssueAsync, default);

            var tokens = new List<string> { first };
            var ended = false;
            foreach (var (superseded, pick, key) in sequence.Steps)
            {
                time.Advance(TimeSpan.FromMinutes(1));
                var reuse = superseded && tokens.Count > 1;
                var presented = reuse ? tokens[pick % (tokens.Count - 1)] : tokens[^1];
                var outcome = await sessions.RefreshAsync(presented, "web", null, key, TestSessions.IssueAsync, default);
                var expected = ended ? RefreshStatus.Invalid
                    : reuse ? RefreshStatus.ReuseDetected
                    : binding is not null && binding != key ? RefreshStatus.ProofKeyMismatch
                    : RefreshStatus.Success;
                if (outcome.Status != expected)
                {
                    return false;
                }

                ended |= reuse;
                if (outcome.Status == RefreshStatus.Success)
                {
                    tokens.Add(outcome.RefreshToken!);
                }

                if ((await store.GetSessionAsync(opened.SessionId, default))!.DpopJkt != binding)
                {
                    return false;
                }
            }

            return true;
        });

}
