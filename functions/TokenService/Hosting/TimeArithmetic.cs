namespace TokenService.Hosting;

/// <summary>
/// Date arithmetic on times that come from outside (event times, token NumericDates up to year 9999): adding a skew
/// to a time in the last seconds of 9999 would throw <see cref="ArgumentOutOfRangeException"/>, a 500 on crafted input.
/// </summary>
public static class TimeArithmetic
{
    /// <summary><paramref name="time"/> + <paramref name="offset"/> (non-negative), or <see cref="DateTimeOffset.MaxValue"/> when that is beyond it.</summary>
    public static DateTimeOffset AddSaturating(DateTimeOffset time, TimeSpan offset) =>
        DateTimeOffset.MaxValue - time <= offset ? DateTimeOffset.MaxValue : time + offset;
}
