using Microsoft.Extensions.Options;

namespace TokenService.Configuration;

/// <summary>Start-up validation of <c>SharedSignals</c>.</summary>
public sealed class SharedSignalsOptionsValidator : IValidateOptions<SharedSignalsOptions>
{
    public ValidateOptionsResult Validate(string? name, SharedSignalsOptions o)
    {
        var errors = new List<string>();
        if (o.MaxEventsPerStream is < 1 or > 100_000)
        {
            errors.Add("SharedSignals:MaxEventsPerStream must be between 1 and 100000, e.g. 1000.");
        }

        if (o.MaxEventsPerPoll is < 1 or > 1000)
        {
            errors.Add("SharedSignals:MaxEventsPerPoll must be between 1 and 1000, e.g. 100.");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
