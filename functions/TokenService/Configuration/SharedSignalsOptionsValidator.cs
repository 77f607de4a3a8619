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

        if (o.PushTimeout < TimeSpan.FromSeconds(1) || o.PushTimeout > TimeSpan.FromMinutes(2))
        {
            errors.Add("SharedSignals:PushTimeout must be between 00:00:01 and 00:02:00, e.g. 00:00:10.");
        }

        if (o.PushInitialBackoff < TimeSpan.FromMilliseconds(100) || o.PushInitialBackoff > TimeSpan.FromMinutes(1))
        {
            errors.Add("SharedSignals:PushInitialBackoff must be between 00:00:00.1 and 00:01:00, e.g. 00:00:01.");
        }

        if (o.PushMaxBackoff < o.PushInitialBackoff || o.PushMaxBackoff > TimeSpan.FromHours(1))
        {
            errors.Add("SharedSignals:PushMaxBackoff must be at least SharedSignals:PushInitialBackoff and at most 01:00:00, e.g. 00:05:00.");
        }

        if (o.MaxStreamsPerReceiver is < 1 or > 1000)
        {
            errors.Add("SharedSignals:MaxStreamsPerReceiver must be between 1 and 1000, e.g. 16.");
        }

        if (o.StreamInactivityTimeout < TimeSpan.FromHours(1) || o.StreamInactivityTimeout > TimeSpan.FromDays(365))
        {
            errors.Add("SharedSignals:StreamInactivityTimeout must be between 01:00:00 and 365.00:00:00, e.g. 7.00:00:00.");
        }

        if (o.PushSweepInterval < TimeSpan.FromSeconds(1) || o.PushSweepInterval > TimeSpan.FromMinutes(10))
        {
            errors.Add("SharedSignals:PushSweepInterval must be between 00:00:01 and 00:10:00, e.g. 00:00:10.");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
