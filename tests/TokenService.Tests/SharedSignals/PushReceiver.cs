using System.Net;
using System.Threading.Channels;

namespace TokenService.Tests.SharedSignals;

/// <summary>
/// A push receiver (RFC 8935) as an <see cref="HttpMessageHandler"/>: it records every request it is sent, with the time
/// it was sent on the given clock, and answers each with <see cref="Answer"/> (202 unless told otherwise). The tests
/// await requests as they come (<see cref="NextAsync"/>), so nothing waits on the wall clock but a guard against a hang.
/// </summary>
public sealed class PushReceiver(TimeProvider time) : HttpMessageHandler
{
    private readonly Channel<PushedRequest> _requests = Channel.CreateUnbounded<PushedRequest>();

    /// <summary>The answer to the request numbered by its index (from 0); 202 with no body by default.</summary>
    public Func<int, PushedRequest, CancellationToken, Task<HttpResponseMessage>> Answer { get; set; } =
        (_, _, _) => Task.FromResult(new HttpResponseMessage(HttpStatusCode.Accepted));

    public List<PushedRequest> Received { get; } = [];

    /// <summary>The next request the receiver is sent (a hang guard of 10 s fails the test).</summary>
    public async Task<PushedRequest> NextAsync() => await _requests.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10));

    /// <summary>Whether a request came that no <see cref="NextAsync"/> has taken yet.</summary>
    public bool HasUnread => _requests.Reader.TryPeek(out _);

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var pushed = new PushedRequest(
            request.Method,
            request.RequestUri!,
            request.Content?.Headers.ContentType?.MediaType,
            request.Headers.Accept.ToString(),
            request.Headers.TryGetValues("Authorization", out var auth) ? auth.Single() : null,
            request.Content is null ? string.Empty : await request.Content.ReadAsStringAsync(cancellationToken),
            time.GetUtcNow());
        int index;
        lock (Received)
        {
            index = Received.Count;
            Received.Add(pushed);
        }

        _requests.Writer.TryWrite(pushed);
        return await Answer(index, pushed, cancellationToken);
    }

    /// <summary>The factory may dispose a handler it rotates out; this one outlives it (the test owns it).</summary>
    protected override void Dispose(bool disposing)
    {
    }
}

public sealed record PushedRequest(HttpMethod Method, Uri Url, string? ContentType, string Accept, string? Authorization, string Body, DateTimeOffset At)
{
    /// <summary>The pushed SET's <c>jti</c>.</summary>
    public string Jti => new Microsoft.IdentityModel.JsonWebTokens.JsonWebToken(Body).Id;
}
