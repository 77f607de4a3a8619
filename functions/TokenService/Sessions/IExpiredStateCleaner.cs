namespace TokenService.Sessions;

/// <summary>
/// Deletes state nothing can use any more: sessions past <see cref="SessionRecord.PurgeAt"/>, deny-list
/// entries and ID-token replay markers past their expiry. Never touches live rows; batched.
/// </summary>
public interface IExpiredStateCleaner
{
    /// <summary>Returns the number of records deleted.</summary>
    Task<int> PurgeExpiredAsync(DateTimeOffset now, CancellationToken cancellationToken);
}
