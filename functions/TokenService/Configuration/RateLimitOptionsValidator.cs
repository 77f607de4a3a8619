using Microsoft.Extensions.Options;

namespace TokenService.Configuration;

/// <summary>Start-up validation of <c>RateLimits</c>.</summary>
public sealed class RateLimitOptionsValidator : IValidateOptions<RateLimitOptions>
{
    public const int MaxPerMinute = 10_000_000;

    public ValidateOptionsResult Validate(string? name, RateLimitOptions o)
    {
        var errors = new List<string>();
        if (o.PerIpPerMinute is < 0 or > MaxPerMinute)
        {
            errors.Add($"RateLimits:PerIpPerMinute must be between 0 (off) and {MaxPerMinute}, e.g. 600.");
        }

        if (o.PerClientPerMinute is < 0 or > MaxPerMinute)
        {
            errors.Add($"RateLimits:PerClientPerMinute must be between 0 (off) and {MaxPerMinute}, e.g. 12000 per signing vault.");
        }

        if (o.FailedAuthBackoffMax < TimeSpan.Zero || o.FailedAuthBackoffMax > TimeSpan.FromHours(1))
        {
            errors.Add("RateLimits:FailedAuthBackoffMax must be between 00:00:00 (off) and 01:00:00, e.g. 00:01:00.");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
