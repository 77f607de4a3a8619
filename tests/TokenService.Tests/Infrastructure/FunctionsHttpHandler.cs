using System.Net;
using System.Reflection;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.Abstractions;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.Routing.Template;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Extensions.DependencyInjection;
using TokenFunctions;
using Yarp.ReverseProxy.Forwarder;

namespace TokenService.Tests.Infrastructure;

/// <summary>
/// Sends an HttpClient request to the Functions app's HTTP functions in-process: finds the function whose
/// <see cref="HttpTriggerAttribute"/> route and methods match (as the Functions host routes, with the empty route
/// prefix of host.json), creates the function class the way the worker does (ActivatorUtilities over the app's
/// service provider, one scope per invocation), binds the <see cref="HttpRequest"/> and route parameters, and
/// executes the returned <see cref="IActionResult"/> against an ASP.NET Core <see cref="HttpContext"/>.
/// Routes are tried in the host's order (<see cref="Discover"/>). A path that no function serves gets the host's plain 404.
/// </summary>
/// <remarks>
/// The hop from the Functions host to the worker is modelled as the host makes it (docs/api.md, "Under a Functions host"). The host is an ASP.NET
/// Core app on Kestrel: Kestrel decodes the request line's path once into <see cref="HttpRequest.Path"/>, every escape
/// but <c>%2F</c> (so that an encoded slash cannot split a segment), and the host routes on that path. Its forwarder,
/// YARP, then builds the worker's URL from that decoded path with <c>RequestUtilities.MakeDestinationAddress</c>,
/// which percent-encodes every character outside RFC 3986's path characters, <c>%</c> included: the <c>%2F</c> that
/// Kestrel left encoded reaches the worker as <c>%252F</c>, while <c>%25</c>, <c>%20</c> or UTF-8 escapes come out as
/// they went in. The worker's Kestrel reads that URL: its raw target is what the function's
/// <see cref="IHttpRequestFeature.RawTarget"/> holds, and its decoded path is the function's request path. Route
/// parameters are the host's (it matched the route).
/// </remarks>
public sealed partial class FunctionsHttpHandler(IServiceProvider services) : HttpMessageHandler
{
    /// <summary>The worker's address as the host forwards to it (the worker listens on loopback).</summary>
    private const string WorkerAddress = "http://127.0.0.1:7080";

    /// <summary>The client address the function sees (the Functions host passes the caller's, as X-Forwarded-For resolves it).</summary>
    public IPAddress RemoteIpAddress { get; init; } = IPAddress.Loopback;

    public static IReadOnlyList<HttpFunctionDescriptor> Functions { get; } = Discover();

    /// <summary>
    /// The app's HTTP functions in the order the Functions host registers their routes: by function name. The host's
    /// router (WebJobsRouter) tries the routes in that order, and the first whose template and methods match takes the
    /// request; there is no precedence of a literal segment over a parameter. Its start-up log lists the order
    /// ("Mapped function route '/sessions/{sid}' [delete,options] to 'DeleteSession'" comes first). So a method two
    /// routes both serve goes to the earlier name: <c>OPTIONS /sessions/revoke-others</c> reaches DeleteSession
    /// (<c>sessions/{sid}</c>), not RevokeOtherSessions.
    /// </summary>
    public static IReadOnlyList<HttpFunctionDescriptor> Discover() =>
        typeof(TokenFunctionsServices).Assembly.GetTypes()
            .SelectMany(t => t.GetMethods(BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static))
            .Select(m => (Method: m, Function: m.GetCustomAttribute<FunctionAttribute>(),
                Trigger: m.GetParameters().Select(p => p.GetCustomAttribute<HttpTriggerAttribute>()).FirstOrDefault(a => a is not null)))
            .Where(x => x.Function is not null && x.Trigger is not null)
            .Select(x => new HttpFunctionDescriptor(x.Function!.Name, x.Trigger!.Route ?? x.Function.Name, x.Trigger.Methods?.Select(v => v.ToUpperInvariant()).ToArray() ?? [], x.Trigger.AuthLevel, x.Method))
            .OrderBy(f => f.Name, StringComparer.Ordinal)
            .ToList();

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        // The host: Kestrel decodes the client's path, routing matches on it.
        var hostPath = new PathString(DecodeAsKestrel(request.RequestUri!.AbsolutePath));
        var query = new QueryString(request.RequestUri.Query);

        // The hop: YARP's URL for the worker, from the host's decoded path and the query as received.
        var forwarded = RequestUtilities.MakeDestinationAddress(WorkerAddress, hostPath, query);
        var rawTarget = forwarded.PathAndQuery;
        var path = new PathString(DecodeAsKestrel(forwarded.AbsolutePath));
        foreach (var function in Functions)
        {
            var values = new RouteValueDictionary();
            var matcher = new TemplateMatcher(TemplateParser.Parse(function.Route), new RouteValueDictionary());
            if (!matcher.TryMatch(hostPath, values))
            {
                continue;
            }

            if (function.Methods.Count > 0 && !function.Methods.Contains(request.Method.Method.ToUpperInvariant()))
            {
                continue;
            }

            return await InvokeAsync(function, values, request, path, rawTarget, cancellationToken);
        }

        return new HttpResponseMessage(HttpStatusCode.NotFound) { RequestMessage = request };
    }

    private async Task<HttpResponseMessage> InvokeAsync(
        HttpFunctionDescriptor function, RouteValueDictionary values, HttpRequestMessage request, PathString path, string rawTarget, CancellationToken cancellationToken)
    {
        await using var scope = services.CreateAsyncScope();
        var context = new DefaultHttpContext { RequestServices = scope.ServiceProvider };
        context.Features.Get<IHttpRequestFeature>()!.RawTarget = rawTarget;
        context.Request.Method = request.Method.Method;
        context.Request.Scheme = request.RequestUri!.Scheme;
        context.Request.Host = new HostString(request.RequestUri.Authority);
        context.Request.Path = path;
        context.Request.QueryString = new QueryString(request.RequestUri.Query);
        context.Connection.RemoteIpAddress = RemoteIpAddress;
        context.RequestAborted = cancellationToken;
        foreach (var header in request.Headers)
        {
            context.Request.Headers[header.Key] = header.Value.ToArray();
        }

        if (request.Content is not null)
        {
            foreach (var header in request.Content.Headers)
            {
                context.Request.Headers[header.Key] = header.Value.ToArray();
            }

            var body = await request.Content.ReadAsByteArrayAsync(cancellationToken);
            context.Request.Body = new MemoryStream(body);
            context.Request.ContentLength = body.Length;
        }

        var responseBody = new MemoryStream();
        context.Response.Body = responseBody;

        var target = function.Method.IsStatic ? null : ActivatorUtilities.CreateInstance(scope.ServiceProvider, function.Method.DeclaringType!);
        var arguments = function.Method.GetParameters().Select(p => Bind(p, context, values, cancellationToken)).ToArray();
        var result = function.Method.Invoke(target, arguments);
        if (result is Task task)
        {
            await task;
            result = task.GetType().GetProperty("Result")?.GetValue(task);
        }

        var actionResult = Assert.IsAssignableFrom<IActionResult>(result);
        await actionResult.ExecuteResultAsync(new ActionContext(context, new RouteData(values), new ActionDescriptor()));
        return ToResponseMessage(context, responseBody.ToArray(), request);
    }

    private static object? Bind(ParameterInfo parameter, HttpContext context, RouteValueDictionary values, CancellationToken cancellationToken)
    {
        if (parameter.ParameterType == typeof(HttpRequest))
        {
            return context.Request;
        }

        if (parameter.ParameterType == typeof(CancellationToken))
        {
            return cancellationToken;
        }

        if (parameter.ParameterType == typeof(string) && values.TryGetValue(parameter.Name!, out var value))
        {
            return value as string;
        }

        throw new InvalidOperationException($"The in-process invoker cannot bind parameter {parameter.Name} of {parameter.Member.Name}.");
    }

    private static HttpResponseMessage ToResponseMessage(HttpContext context, byte[] body, HttpRequestMessage request)
    {
        var response = new HttpResponseMessage((HttpStatusCode)context.Response.StatusCode) { RequestMessage = request, Content = new ByteArrayContent(body) };
        foreach (var header in context.Response.Headers)
        {
            if (!response.Headers.TryAddWithoutValidation(header.Key, header.Value.ToArray()))
            {
                response.Content.Headers.TryAddWithoutValidation(header.Key, header.Value.ToArray());
            }
        }

        return response;
    }

    /// <summary>Kestrel's path decoding: every escape but <c>%2F</c> (either case), so that an encoded slash stays inside its segment.</summary>
    public static string DecodeAsKestrel(string rawPath) =>
        string.Concat(EncodedSlash().Split(rawPath).Select(part => EncodedSlash().IsMatch(part) ? part : Uri.UnescapeDataString(part)));

    [GeneratedRegex("(%2[Ff])")]
    private static partial Regex EncodedSlash();
}

/// <summary>An HTTP function of the app: its name, route template, methods (upper case) and method.</summary>
public sealed record HttpFunctionDescriptor(string Name, string Route, IReadOnlyList<string> Methods, AuthorizationLevel AuthLevel, MethodInfo Method);
