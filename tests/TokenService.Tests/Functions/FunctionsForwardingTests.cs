using Microsoft.AspNetCore.Http;
using TokenService.Tests.Infrastructure;
using Yarp.ReverseProxy.Forwarder;

namespace TokenService.Tests.Functions;

/// <summary>
/// The hop the in-process Functions harness models (docs/api.md, "Under a Functions host"): the host's Kestrel decodes the path except
/// <c>%2F</c>, and YARP rebuilds the worker's URL from that decoded path, escaping its <c>%</c>.
/// </summary>
public sealed class FunctionsForwardingTests
{
    [Theory]
    [InlineData("/management/users/org%2Falice/revoke", "/management/users/org%252Falice/revoke")]
    [InlineData("/management/users/org%2falice/revoke", "/management/users/org%252falice/revoke")]
    [InlineData("/management/users/org%252Falice/revoke", "/management/users/org%252Falice/revoke")]
    [InlineData("/management/users/100%25/revoke", "/management/users/100%25/revoke")]
    [InlineData("/management/users/with%20space/revoke", "/management/users/with%20space/revoke")]
    [InlineData("/management/users/x%2By%3Az%40w/revoke", "/management/users/x+y:z@w/revoke")]
    [InlineData("/management/users/Zo%C3%AB/revoke", "/management/users/Zo%C3%AB/revoke")]
    public void The_worker_reads_the_path_that_yarp_rebuilds_from_the_hosts_decoded_path(string clientPath, string workerPath)
    {
        var hostPath = new PathString(FunctionsHttpHandler.DecodeAsKestrel(clientPath));
        var forwarded = RequestUtilities.MakeDestinationAddress("http://127.0.0.1:7080", hostPath, new QueryString("?a=%2F"));
        Assert.Equal(workerPath + "?a=%2F", forwarded.PathAndQuery);
    }
}
