using Microsoft.Azure.Functions.Worker.Extensions.Abstractions;

// Stands in for the worker-side package Microsoft.Azure.Functions.Worker.Extensions.EventGrid until the registry
// serves it: that package is this binding attribute plus the assembly-level ExtensionInformation below, which makes
// the Worker SDK list the host-side Event Grid extension in extensions.json (and install it into the generated
// WorkerExtensions project). The binding type written to functions.metadata is the attribute name without
// "Attribute", camel-cased: "eventGridTrigger", the type the host extension registers. The function receives each
// event as its JSON text (string); the host splits batches into one invocation per event.
[assembly: ExtensionInformation("Microsoft.Azure.WebJobs.Extensions.EventGrid", "3.3.0")]

namespace Microsoft.Azure.Functions.Worker;

/// <summary>Event Grid trigger binding (Event Grid schema or CloudEvents 1.0), delivered as one event per call.</summary>
[AttributeUsage(AttributeTargets.Parameter)]
public sealed class EventGridTriggerAttribute : TriggerBindingAttribute
{
}
