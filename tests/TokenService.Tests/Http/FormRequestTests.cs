using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using TokenService.Http;

namespace TokenService.Tests.Http;

/// <summary>
/// The OAuth form reader and the JSON answers on their own: bodies that outgrow the first pooled buffer, the size limit
/// at its edge, and answers built one after another on a thread's reused buffer.
/// </summary>
public sealed class FormRequestTests
{
    [Fact]
    public async Task A_body_of_exactly_the_limit_read_in_small_pieces_is_parsed_whole()
    {
        // Five parameters filling MaxBodyBytes exactly: the reader moves from its first 4 KB buffer through every larger
        // one, and each value must come out intact (a lost or repeated piece shows in the values).
        var values = Enumerable.Range(0, 5).Select(i => new string((char)('a' + i), i < 4 ? 13_103 : 13_105)).ToArray();
        var body = string.Join('&', values.Select((v, i) => $"p{i}={v}"));
        Assert.Equal(FormRequest.MaxBodyBytes, Encoding.ASCII.GetByteCount(body));

        var result = await FormRequest.ReadAsync(Request(body, pieceBytes: 1000), CancellationToken.None);

        Assert.Null(result.Error);
        Assert.Equal(5, result.Form!.Count);
        for (var i = 0; i < 5; i++)
        {
            Assert.Equal(values[i], result.Form[$"p{i}"].ToString());
        }
    }

    [Fact]
    public async Task A_body_one_byte_over_the_limit_is_refused_with_413_and_the_connection_closed()
    {
        var context = Request("p=" + new string('x', FormRequest.MaxBodyBytes - 1), pieceBytes: 4096).HttpContext;

        var result = await FormRequest.ReadAsync(context.Request, CancellationToken.None);

        Assert.Null(result.Form);
        Assert.Equal(StatusCodes.Status413PayloadTooLarge, result.Status);
        Assert.Equal("The request body is too large.", result.Error);
        Assert.Equal("close", context.Response.Headers.Connection.ToString());
    }

    [Theory]
    [InlineData("application/x-www-form-urlencoded")]
    [InlineData("Application/X-WWW-Form-Urlencoded")]
    [InlineData("application/x-www-form-urlencoded; charset=utf-8")]
    [InlineData("application/x-www-form-urlencoded;charset=UTF-8")]
    public async Task The_form_media_type_is_accepted_bare_or_with_a_utf8_charset(string contentType)
    {
        var result = await FormRequest.ReadAsync(Request("grant_type=refresh_token", contentType: contentType), CancellationToken.None);

        Assert.Null(result.Error);
        Assert.Equal("refresh_token", result.Form!["grant_type"].ToString());
    }

    [Theory]
    [InlineData("application/json", "The request body must be application/x-www-form-urlencoded.")]
    [InlineData("application/x-www-form-urlencoded; charset=iso-8859-1", "The request body must be UTF-8.")]
    [InlineData("application/x-www-form-urlencoded-not", "The request body must be application/x-www-form-urlencoded.")]
    public async Task Other_media_types_and_charsets_are_refused(string contentType, string error)
    {
        var result = await FormRequest.ReadAsync(Request("grant_type=refresh_token", contentType: contentType), CancellationToken.None);

        Assert.Null(result.Form);
        Assert.Equal(error, result.Error);
    }

    [Fact]
    public async Task Json_answers_built_one_after_another_each_have_their_own_body_and_length()
    {
        // A long answer (past the size a thread keeps its buffer at), then short ones: each must carry exactly its own
        // members, with nothing left over from the one before.
        var answers = new[] { new string('l', 40_000), "short", new string('m', 3_000), "s" };
        foreach (var value in answers)
        {
            var context = new DefaultHttpContext();
            var output = new MemoryStream();
            context.Response.Body = output;

            await OAuthResponses.WriteJsonAsync(context, StatusCodes.Status200OK, value, static (writer, v) => writer.WriteString("value", v));

            var bytes = output.ToArray();
            Assert.Equal(bytes.Length, context.Response.ContentLength);
            Assert.Equal("no-store", context.Response.Headers.CacheControl.ToString());
            using var json = JsonDocument.Parse(bytes);
            Assert.Equal(value, json.RootElement.GetProperty("value").GetString());
            Assert.Single(json.RootElement.EnumerateObject());
        }
    }

    private static HttpRequest Request(string body, int pieceBytes = int.MaxValue, string contentType = "application/x-www-form-urlencoded")
    {
        var context = new DefaultHttpContext();
        context.Request.Method = "POST";
        context.Request.ContentType = contentType;
        context.Request.Body = new PiecewiseStream(Encoding.ASCII.GetBytes(body), pieceBytes);
        return context.Request;
    }

    /// <summary>A body that arrives at most <c>pieceBytes</c> at a time, as a socket delivers it.</summary>
    private sealed class PiecewiseStream(byte[] content, int pieceBytes) : MemoryStream(content, writable: false)
    {
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            base.ReadAsync(buffer[..Math.Min(buffer.Length, pieceBytes)], cancellationToken);
    }
}
