using System.Reflection;
using TokenService.Tests.Infrastructure;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace TokenService.BrowserTests.Infrastructure;

/// <summary>
/// Marks a test class whose token service is the Functions app under a real Functions host
/// (<see cref="FunctionsHostBrowserFixture"/>): without <c>func</c> or <c>../shared/functions-host/run.sh</c> each of
/// its tests is reported as skipped with the one-line reason of <see cref="RealFunctionsHost.SkipReason"/>.
/// </summary>
[AttributeUsage(AttributeTargets.Class, Inherited = false)]
public sealed class OnFunctionsHostAttribute : Attribute;

/// <summary>
/// A test the Functions host class inherits but cannot run there (it moves the in-process token service's clock or
/// reads the requests it logged): reported as skipped with <paramref name="reason"/>, never silently.
/// </summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class NotOnFunctionsHostAttribute(string test, string reason) : Attribute
{
    public string Test { get; } = test;

    public string Reason { get; } = reason;
}

/// <summary>
/// Discovers <see cref="BrowserFactAttribute"/> tests. xunit 2 cannot skip a test at run time, and the Functions host
/// classes inherit their tests from classes that run in-process too, so discovery reports such a test as skipped,
/// with the reason, when no Functions host can run here or when its class names it in
/// <see cref="NotOnFunctionsHostAttribute"/>.
/// </summary>
public sealed class BrowserFactDiscoverer(IMessageSink diagnosticMessageSink) : FactDiscoverer(diagnosticMessageSink)
{
    protected override IXunitTestCase CreateTestCase(ITestFrameworkDiscoveryOptions discoveryOptions, ITestMethod testMethod, IAttributeInfo factAttribute)
    {
        var type = testMethod.TestClass.Class.ToRuntimeType();
        if (type?.GetCustomAttribute<OnFunctionsHostAttribute>() is not null && string.IsNullOrEmpty(factAttribute.GetNamedArgument<string>(nameof(FactAttribute.Skip))))
        {
            var reason = RealFunctionsHost.SkipReason
                ?? type.GetCustomAttributes<NotOnFunctionsHostAttribute>().FirstOrDefault(a => a.Test == testMethod.Method.Name)?.Reason;
            if (reason is not null)
            {
                return new SkippedBrowserTestCase(DiagnosticMessageSink, discoveryOptions.MethodDisplayOrDefault(), discoveryOptions.MethodDisplayOptionsOrDefault(), testMethod, reason);
            }
        }

        return base.CreateTestCase(discoveryOptions, testMethod, factAttribute);
    }
}

/// <summary>A test case reported as skipped with a reason decided at discovery (see <see cref="BrowserFactDiscoverer"/>).</summary>
public sealed class SkippedBrowserTestCase : XunitTestCase
{
    private string _reason = string.Empty;

    [Obsolete("Called by the de-serializer; should only be called by deriving classes for de-serialization purposes")]
    public SkippedBrowserTestCase()
    {
    }

    public SkippedBrowserTestCase(IMessageSink diagnosticMessageSink, TestMethodDisplay defaultMethodDisplay, TestMethodDisplayOptions defaultMethodDisplayOptions, ITestMethod testMethod, string reason)
        : base(diagnosticMessageSink, defaultMethodDisplay, defaultMethodDisplayOptions, testMethod)
    {
        _reason = reason;
    }

    protected override string GetSkipReason(IAttributeInfo factAttribute) => _reason;

    public override void Serialize(IXunitSerializationInfo data)
    {
        data.AddValue("SkipReasonText", _reason);
        base.Serialize(data);
    }

    public override void Deserialize(IXunitSerializationInfo data)
    {
        _reason = data.GetValue<string>("SkipReasonText");
        base.Deserialize(data);
    }
}
