namespace TokenService.Sessions;

/// <summary>
/// A store's own readiness check for <c>/healthz</c>, for stores whose reads cannot tell "nothing stored" from "the
/// storage is not there" (Table Storage answers a point read of a missing table like one of a missing row). Throws
/// <see cref="DependencyUnavailableException"/> when the store cannot serve. Without one, <c>/healthz</c> probes the
/// store with a session read.
/// </summary>
public interface IStoreHealthCheck
{
    Task CheckAsync(CancellationToken cancellationToken);
}
