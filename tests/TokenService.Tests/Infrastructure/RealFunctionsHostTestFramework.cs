using System.Reflection;
using Xunit.Abstractions;
using Xunit.Sdk;

[assembly: TestFramework("TokenService.Tests.Infrastructure.RealFunctionsHostTestFramework", "TokenService.Tests")]

namespace TokenService.Tests.Infrastructure;

/// <summary>Marks a test class of the real Functions host tier (<see cref="RealFunctionsHostPool"/>).</summary>
[AttributeUsage(AttributeTargets.Class, Inherited = false)]
public sealed class RealFunctionsHostTierAttribute : Attribute;

/// <summary>
/// A test a real-host class inherits but cannot run through a real host (it reaches into the process, or proves
/// something the real host does differently): reported as skipped with <paramref name="reason"/>, never silently.
/// </summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class NotOnRealHostAttribute(string test, string reason) : Attribute
{
    public string Test { get; } = test;

    public string Reason { get; } = reason;
}

/// <summary>
/// xunit 2 with two additions for the real Functions host tier. xunit 2 cannot skip a test at run time, and the tier's
/// classes inherit their tests from classes that run on the other hosts too, so discovery reports a tier test as
/// skipped (with the reason) when no Functions host can run here or when its class names it in
/// <see cref="NotOnRealHostAttribute"/>. And a failing tier test carries the tail of the host's log in its
/// message, since the app's errors are logged in another process.
/// </summary>
public sealed class RealFunctionsHostTestFramework(IMessageSink messageSink) : XunitTestFramework(messageSink)
{
    protected override ITestFrameworkDiscoverer CreateDiscoverer(IAssemblyInfo assemblyInfo) =>
        new Discoverer(assemblyInfo, SourceInformationProvider, DiagnosticMessageSink);

    protected override ITestFrameworkExecutor CreateExecutor(AssemblyName assemblyName) =>
        new Executor(assemblyName, SourceInformationProvider, DiagnosticMessageSink);

    internal static bool IsTierClass(ITypeInfo type) => type.ToRuntimeType()?.GetCustomAttribute<RealFunctionsHostTierAttribute>() is not null;

    private static string? SkipReason(ITestMethod testMethod)
    {
        var type = testMethod.TestClass.Class.ToRuntimeType();
        if (type?.GetCustomAttribute<RealFunctionsHostTierAttribute>() is null)
        {
            return null;
        }

        return RealFunctionsHost.SkipReason
            ?? type.GetCustomAttributes<NotOnRealHostAttribute>().FirstOrDefault(a => a.Test == testMethod.Method.Name)?.Reason;
    }

    private sealed class Discoverer(IAssemblyInfo assemblyInfo, ISourceInformationProvider sourceProvider, IMessageSink diagnosticMessageSink)
        : XunitTestFrameworkDiscoverer(assemblyInfo, sourceProvider, diagnosticMessageSink)
    {
        protected override bool FindTestsForMethod(ITestMethod testMethod, bool includeSourceInformation, IMessageBus messageBus, ITestFrameworkDiscoveryOptions discoveryOptions)
        {
            var reason = SkipReason(testMethod);
            if (reason is null || !testMethod.Method.GetCustomAttributes(typeof(FactAttribute)).Any())
            {
                return base.FindTestsForMethod(testMethod, includeSourceInformation, messageBus, discoveryOptions);
            }

            // One skipped case per method, theories included: their rows would only repeat the reason.
            var testCase = new SkippedTestCase(DiagnosticMessageSink, discoveryOptions.MethodDisplayOrDefault(), discoveryOptions.MethodDisplayOptionsOrDefault(), testMethod, reason);
            return ReportDiscoveredTestCase(testCase, includeSourceInformation, messageBus);
        }
    }

    private sealed class Executor(AssemblyName assemblyName, ISourceInformationProvider sourceInformationProvider, IMessageSink diagnosticMessageSink)
        : XunitTestFrameworkExecutor(assemblyName, sourceInformationProvider, diagnosticMessageSink)
    {
        protected override ITestFrameworkDiscoverer CreateDiscoverer() => new Discoverer(AssemblyInfo, SourceInformationProvider, DiagnosticMessageSink);

        protected override void RunTestCases(IEnumerable<IXunitTestCase> testCases, IMessageSink executionMessageSink, ITestFrameworkExecutionOptions executionOptions) =>
            base.RunTestCases(testCases, new HostLogOnFailure(executionMessageSink), executionOptions);
    }

    /// <summary>Appends the tail of the log of the real host a failing tier test last called to its message.</summary>
    private sealed class HostLogOnFailure(IMessageSink inner) : LongLivedMarshalByRefObject, IMessageSink
    {
        public bool OnMessage(IMessageSinkMessage message)
        {
            if (message is ITestFailed failed && IsTierClass(failed.TestClass.Class) && RealFunctionsHost.LastUsed is { } host && failed.Messages.Length > 0)
            {
                var messages = failed.Messages.ToArray();
                messages[0] += "\n" + host.Tail();
                message = new TestFailed(failed.Test, failed.ExecutionTime, failed.Output, failed.ExceptionTypes, messages, failed.StackTraces, failed.ExceptionParentIndices);
            }

            return inner.OnMessage(message);
        }
    }
}

/// <summary>A test case reported as skipped with a reason decided at discovery (see <see cref="RealFunctionsHostTestFramework"/>).</summary>
public sealed class SkippedTestCase : XunitTestCase
{
    private string _reason = string.Empty;

    [Obsolete("Called by the de-serializer; should only be called by deriving classes for de-serialization purposes")]
    public SkippedTestCase()
    {
    }

    public SkippedTestCase(IMessageSink diagnosticMessageSink, TestMethodDisplay defaultMethodDisplay, TestMethodDisplayOptions defaultMethodDisplayOptions, ITestMethod testMethod, string reason)
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
