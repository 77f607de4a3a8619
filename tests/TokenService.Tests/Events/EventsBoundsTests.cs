using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using TokenService.Configuration;
using TokenService.Events;
using TokenService.Tests.Infrastructure;
using static TokenService.Tests.Infrastructure.TokenServiceTestHost;
using Microsoft.Extensions.Time.Testing;

namespace TokenService.Tests.Events;

/// <summary>
/// The embedded processed-event store is bounded (SHA-256 hashes of the keys, a capacity, oldest forgotten first),
/// text from events is logged only sanitised, and the event settings are checked at start-up.
/// </summary>
public sealed class EventsBoundsTests
{
    private static InMemoryProcessedEventStore Store(int capacity, TimeProvider? time = null) =>
        new(Options.Create(new EventsOptions { ProcessedEventCapacity = capacity }), time ?? TimeProvider.System);

    [Fact]
    public async Task The_in_memory_store_keeps_at_most_its_capacity_and_forgets_the_oldest_first()
    {
        var store = Store(capacity: 3);
        var until = DateTimeOffset.UtcNow.AddHours(1);
        var keys = Enumerable.Range(0, 5).Select(i => "source|" + i + new string('k', 1000)).ToList();
        foreach (var key in keys)
        {
            await store.MarkProcessedAsync(key, until, CancellationToken.None);
        }

        Assert.Equal(3, store.Count);
        Assert.False(await store.IsProcessedAsync(keys[0], CancellationToken.None));
        Assert.False(await store.IsProcessedAsync(keys[1], CancellationToken.None));
        foreach (var key in keys.Skip(2))
        {
            Assert.True(await store.IsProcessedAsync(key, CancellationToken.None));
        }

        // Marking a remembered key again neither grows the store nor evicts anything.
        await store.MarkProcessedAsync(keys[2], until.AddHours(1), CancellationToken.None);
        Assert.Equal(3, store.Count);
        Assert.True(await store.IsProcessedAsync(keys[2], CancellationToken.None));
    }

    [Fact]
    public async Task The_in_memory_store_holds_hashes_so_its_size_does_not_depend_on_the_length_of_event_ids()
    {
        var store = Store(capacity: 1_000);
        var until = DateTimeOffset.UtcNow.AddHours(1);
        for (var i = 0; i < 20_000; i++)
        {
            await store.MarkProcessedAsync(i.ToString(System.Globalization.CultureInfo.InvariantCulture) + new string('x', 1_000), until, CancellationToken.None);
        }

        Assert.Equal(1_000, store.Count);

        // No event id is kept: nothing the store references holds the 1,000-character text.
        var strings = ReachableStrings(store).ToList();
        Assert.DoesNotContain(strings, s => s.Length >= 1_000);
    }

    [Fact]
    public async Task Expired_entries_are_not_processed_and_are_purged()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var store = Store(capacity: 10, time);
        await store.MarkProcessedAsync("a", time.GetUtcNow().AddMinutes(1), CancellationToken.None);
        await store.MarkProcessedAsync("b", time.GetUtcNow().AddMinutes(10), CancellationToken.None);
        time.Advance(TimeSpan.FromMinutes(2));
        Assert.False(await store.IsProcessedAsync("a", CancellationToken.None));
        Assert.True(await store.IsProcessedAsync("b", CancellationToken.None));
        Assert.Equal(1, await store.PurgeExpiredAsync(time.GetUtcNow(), CancellationToken.None));
        Assert.Equal(1, store.Count);
    }

    [Theory]
    [InlineData(HostKind.Standalone)]
    [InlineData(HostKind.Functions)]
    public async Task Events_processed_event_capacity_bounds_the_hosts_store(HostKind kind)
    {
        await using var host = await TokenServiceTestHost.StartAsync(kind, new Dictionary<string, string?> { ["Events:ProcessedEventCapacity"] = "2" });
        var batch = new JsonArray();
        for (var i = 0; i < 5; i++)
        {
            batch.Add(new JsonObject
            {
                ["specversion"] = "1.0", ["id"] = Guid.NewGuid().ToString() + new string('i', 900), ["source"] = "idp", ["type"] = "TokenService.Idp.AccountDisabled",
                ["data"] = new JsonObject { ["userId"] = "nobody-" + i },
            });
        }

        using var request = new HttpRequestMessage(HttpMethod.Post, "/events/idp") { Content = new StringContent(batch.ToJsonString(), Encoding.UTF8) };
        request.Headers.Add("X-Webhook-Key", WebhookSecret);
        request.Content.Headers.ContentType = System.Net.Http.Headers.MediaTypeHeaderValue.Parse("application/cloudevents-batch+json");
        using var response = await host.Client.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(5, (await JsonAsync(response)).GetProperty("revoked").GetInt32());

        var store = Assert.IsType<InMemoryProcessedEventStore>(host.Services.GetRequiredService<IProcessedEventStore>());
        Assert.Equal(2, store.Count);
    }

    [Theory]
    [InlineData("Events:MaxSecurityEventAge", "2.00:00:00")] // beyond the 25 h deduplication window
    [InlineData("Events:MaxSecurityEventAge", "00:00:00")]
    [InlineData("Events:EventTimeSkew", "-00:00:01")]
    [InlineData("Events:EventTimeSkew", "01:00:00")]
    [InlineData("Events:ProcessedEventCapacity", "0")]
    [InlineData("Events:GraphClientState", "   ")]
    public async Task Bad_event_settings_stop_start_up_naming_the_key(string key, string value)
    {
        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => TokenServiceTestHost.StartFunctionsAsync(new Dictionary<string, string?> { [key] = value }));
        Assert.Contains(key, error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("evt\r\nINFO forged", "evt\\u000d\\u000aINFO forged")]
    [InlineData("a\u2028b\u202ec\u0085", "a\\u2028b\\u202ec\\u0085")]
    [InlineData("back\\slash", "back\\u005cslash")]
    [InlineData("emoji \U0001F600 ok", "emoji \U0001F600 ok")]
    [InlineData(null, "-")]
    public void Log_values_escape_control_characters(string? raw, string logged) => Assert.Equal(logged, LogValue.Of(raw));

    [Fact]
    public void Log_values_are_at_most_128_characters_and_escape_unpaired_surrogates()
    {
        Assert.Equal("lone \\ud800 surrogate", LogValue.Of("lone \ud800 surrogate"));
        Assert.Equal(new string('x', 128), LogValue.Of(new string('x', 128)));
        var cut = LogValue.Of(new string('x', 1_000));
        Assert.Equal(128, cut.Length);
        Assert.EndsWith("…", cut, StringComparison.Ordinal);
        Assert.True(LogValue.Of(new string('\n', 1_000)).Length <= 128);
    }

    // Every string reachable from the store's fields (collections included), to show that no event id is kept.
    private static IEnumerable<string> ReachableStrings(object root)
    {
        var seen = new HashSet<object>(ReferenceEqualityComparer.Instance);
        var pending = new Stack<object>([root]);
        while (pending.TryPop(out var current))
        {
            if (!seen.Add(current))
            {
                continue;
            }

            if (current is string text)
            {
                yield return text;
                continue;
            }

            if (current is System.Collections.IEnumerable items)
            {
                foreach (var item in items)
                {
                    if (item is not null && !item.GetType().IsPrimitive)
                    {
                        pending.Push(item);
                    }
                }
            }

            foreach (var field in current.GetType().GetFields(System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.NonPublic))
            {
                if (!field.FieldType.IsPrimitive && field.GetValue(current) is { } value && value is not (TimeProvider or Type or System.Reflection.Pointer or Delegate))
                {
                    pending.Push(value);
                }
            }
        }
    }
}
